// The CLI's version: package.json's, read at build time by the bundler and at run time by Node's JSON
// modules, so there is one place that says it.
import packageJson from "../../package.json" with { type: "json" };

export const CLI_VERSION: string = packageJson.version;
