import { describe, expect, it } from "vitest";
import { base64Json, boundedMessage, jsonStructureBytes, MAX_MESSAGE_CHARS } from "./server.ts";

/** What the API server does with AdmissionResponse.patch: base64, then UTF-8 JSON. */
const decoded = (patch: string) => JSON.parse(Buffer.from(patch, "base64").toString("utf8")) as unknown;

describe("base64Json (AdmissionResponse.patch)", () => {
  it("decodes to the same value for ASCII, Latin-1, other scripts, astral characters and lone surrogates", () => {
    const values = [
      [{ op: "add", path: "/metadata/labels", value: { "seccomp.lockstep.dev/web": "true" } }],
      { latin1: "café ñ ÿ", greek: "Ωμέγα", cjk: "漢字", emoji: "🛡️🔒", lone: "\ud800x\udfff", nul: "\u0000" },
      "\u0080\u00ff\u0100\u07ff\u0800\uffff",
    ];
    for (const value of values) expect(decoded(base64Json(value))).toEqual(value);
  });

  it("is the base64 of the UTF-8 JSON, as Buffer's own encoding gives, for ASCII", () => {
    const value = [{ op: "add", path: "/spec/affinity", value: { nodeAffinity: {} } }];
    expect(base64Json(value)).toBe(Buffer.from(JSON.stringify(value)).toString("base64"));
  });
});

describe("jsonStructureBytes (the bound on what JSON.parse allocates)", () => {
  it("counts the bytes that open an object or an array or separate items, not those inside other characters", () => {
    expect(jsonStructureBytes(Buffer.from('{"a":[1,2,{}],"b":"x"}'))).toBe(6);
    // Multi-byte UTF-8 characters never contain these bytes.
    expect(jsonStructureBytes(Buffer.from('"漢字🛡️Ωü"'))).toBe(0);
    expect(jsonStructureBytes(Buffer.from("[{},{},{}]"))).toBe(6);
  });
});

describe("boundedMessage", () => {
  it("keeps a short message and cuts a long one, saying how much was left out", () => {
    expect(boundedMessage("short")).toBe("short");
    const cut = boundedMessage("x".repeat(MAX_MESSAGE_CHARS + 10));
    expect(cut).toBe(`${"x".repeat(MAX_MESSAGE_CHARS)}... (10 more characters)`);
  });
});
