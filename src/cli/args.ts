// Command-line flags: node:util's parseArgs errors (an unknown flag, a flag without its value) reworded to
// name the command and point at its --help, instead of Node's text; flags that take one of a few values.
import { UserError } from "./inputs.ts";

/** A parseArgs error's words: the flag it is about, and what is wrong with it. */
export function parseArgsProblem(command: string, error: Error & { code?: string }): string {
  const flag = /'(-{1,2}[^'\s]+)/.exec(error.message)?.[1];
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `${command}: unknown option ${flag ?? ""} (lockstep ${command} --help lists the options)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return `${command}: option ${flag ?? ""} ${/argument missing/.test(error.message) ? "needs a value" : "takes no value"} (lockstep ${command} --help)`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `${command}: unexpected argument (lockstep ${command} --help)`;
    default:
      return `${command}: ${error.message.split(".")[0]} (lockstep ${command} --help)`;
  }
}

/** A flag whose value must be one of `allowed`. */
export function oneOfFlag<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new UserError(
      `--${flag} ${value}: must be ${allowed.slice(0, -1).join(", ")}${allowed.length > 1 ? " or " : ""}${allowed.at(-1)}`,
    );
  return value as T;
}
