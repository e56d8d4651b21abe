import { describe, expect, it } from "vitest";
import { unreachableMessage } from "./node-command.ts";

describe("unreachableMessage", () => {
  const failed = (cause?: object) => Object.assign(new TypeError("fetch failed"), { cause });

  it("names the server, the context and the cause of a request that got no answer", () => {
    expect(
      unreachableMessage(
        failed({ message: "connect ECONNREFUSED 10.0.0.1:443", code: "ECONNREFUSED" }),
        "https://10.0.0.1:443",
        "eks",
      ),
    ).toBe(
      'cannot reach the API server https://10.0.0.1:443 of the context "eks": connect ECONNREFUSED 10.0.0.1:443',
    );
    expect(unreachableMessage(failed({ code: "ENOTFOUND" }), "https://k", "c")).toBe(
      'cannot reach the API server https://k of the context "c": ENOTFOUND',
    );
    expect(unreachableMessage(failed(), "https://k", "c")).toBe(
      'cannot reach the API server https://k of the context "c"',
    );
  });

  it("leaves every other error to the API error's own message", () => {
    expect(unreachableMessage(new Error("HTTP 403"), "https://k", "c")).toBeUndefined();
    expect(unreachableMessage(new TypeError("x is not a function"), "https://k", "c")).toBeUndefined();
  });
});
