import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { ByteBudget } from "./byte-budget.ts";
import {
  base64Json,
  boundedMessage,
  jsonStructureChars,
  LARGE_BODIES_BUDGET_BYTES,
  MAX_BODY_BYTES,
  MAX_JSON_CONTAINERS_AND_ITEMS,
  MAX_MESSAGE_CHARS,
  readBody,
  SMALL_BODY_BYTES,
} from "./server.ts";

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

describe("jsonStructureChars (the bound on what JSON.parse allocates)", () => {
  it("counts what opens an object or an array or separates items, not what is inside other characters", () => {
    expect(jsonStructureChars('{"a":[1,2,{}],"b":"x"}')).toBe(6);
    // Multi-byte UTF-8 characters never contain these bytes.
    expect(jsonStructureChars('"漢字🛡️Ωü"')).toBe(0);
    expect(jsonStructureChars("[{},{},{}]")).toBe(6);
  });
});

describe("boundedMessage", () => {
  it("keeps a short message and cuts a long one, saying how much was left out", () => {
    expect(boundedMessage("short")).toBe("short");
    const cut = boundedMessage("x".repeat(MAX_MESSAGE_CHARS + 10));
    expect(cut).toBe(`${"x".repeat(MAX_MESSAGE_CHARS)}... (10 more characters)`);
  });
});

describe("readBody (the large-body budget)", () => {
  /** What readBody reads from: an IncomingMessage's events, headers and `complete`. */
  const fakeRequest = (headers: Record<string, string> = {}) =>
    Object.assign(new EventEmitter(), { headers, complete: false }) as unknown as IncomingMessage &
      EventEmitter & { complete: boolean };
  const chunk = (bytes: number) => Buffer.alloc(bytes, " ");

  it("takes what a body holds beyond SMALL_BODY_BYTES, and hands it to the caller once, whatever the socket does next", async () => {
    const budget = new ByteBudget(LARGE_BODIES_BUDGET_BYTES);
    const req = fakeRequest();
    const read = readBody(req, budget);
    req.emit("data", chunk(SMALL_BODY_BYTES + 1000));
    expect(budget.inUse).toBe(1000);
    req.complete = true;
    req.emit("end");
    const result = await read;
    expect(typeof result === "object" && result.budgeted).toBe(1000);
    // A socket error after the body was handed over: the caller still holds its share.
    req.emit("error", new Error("reset"));
    req.emit("close");
    expect(budget.inUse).toBe(1000);
  });

  it("gives the share back when the body is refused or breaks off, and refuses what does not fit", async () => {
    const budget = new ByteBudget(2000);
    const broken = fakeRequest();
    const read = readBody(broken, budget);
    broken.emit("data", chunk(SMALL_BODY_BYTES + 1500));
    expect(budget.inUse).toBe(1500);
    broken.emit("close");
    expect(await read).toBeUndefined();
    expect(budget.inUse).toBe(0);

    const holder = fakeRequest();
    void readBody(holder, budget);
    holder.emit("data", chunk(SMALL_BODY_BYTES + 1500));
    const busy = fakeRequest();
    const refused = readBody(busy, budget);
    busy.emit("data", chunk(SMALL_BODY_BYTES + 1000));
    expect(String(await refused)).toBe("Symbol(busy)");
    expect(budget.inUse).toBe(1500);

    const announced = readBody(fakeRequest({ "content-length": String(MAX_BODY_BYTES + 1) }), budget);
    expect(String(await announced)).toBe("Symbol(too large)");
    const complex = fakeRequest();
    const tooComplex = readBody(complex, budget);
    complex.emit("data", Buffer.from("[".repeat(MAX_JSON_CONTAINERS_AND_ITEMS + 1)));
    expect(String(await tooComplex)).toBe("Symbol(too complex)");
    expect(budget.inUse).toBe(1500);
  });

  it("counts the structure of a long body from its first byte, and leaves a body that cannot hold too much alone", async () => {
    const budget = new ByteBudget(LARGE_BODIES_BUDGET_BYTES);
    // Most of it arrives before the body is long enough to be counted: it counts all the same.
    const split = fakeRequest();
    const refused = readBody(split, budget);
    split.emit("data", Buffer.from("[".repeat(MAX_JSON_CONTAINERS_AND_ITEMS - 10)));
    split.emit("data", Buffer.from(`漢${"[".repeat(11)}`));
    expect(String(await refused)).toBe("Symbol(too complex)");
    // As many as the bound, with a character split between two chunks: read whole.
    const atBound = fakeRequest();
    const read = readBody(atBound, budget);
    const han = Buffer.from("漢");
    atBound.emit(
      "data",
      Buffer.concat([Buffer.from("{".repeat(MAX_JSON_CONTAINERS_AND_ITEMS)), han.subarray(0, 1)]),
    );
    atBound.emit("data", han.subarray(1));
    atBound.emit("end");
    const body = await read;
    expect(typeof body === "object" && body.raw).toBe(`${"{".repeat(MAX_JSON_CONTAINERS_AND_ITEMS)}漢`);
    if (typeof body === "object") budget.release(body.budgeted);
    expect(budget.inUse).toBe(0);
  });
});
