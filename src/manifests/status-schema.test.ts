// The status is written twice, in two languages: the zod schema every component parses with
// (src/api/common.ts) and the CRD's OpenAPI schema the API server enforces (crd.ts). Both take their limits
// from the same constants; this holds their shape together: the same fields at every level, and the
// same types, enums, patterns and bounds wherever both state one.

import { describe, expect, it } from "vitest";
import * as z from "zod";
import { ProfileStatusSchema } from "../api/common.ts";
import { STATUS_SCHEMA } from "./crd.ts";

type Json = { [key: string]: unknown };
const CHECKED = ["type", "enum", "pattern", "maxItems", "maxLength"] as const;

/** [path, keyword, value] for every checked keyword, and [path, "fields", names] for every object. */
function facts(schema: Json, path = "status"): [string, string, unknown][] {
  const out: [string, string, unknown][] = [];
  for (const k of CHECKED) if (schema[k] !== undefined) out.push([path, k, schema[k]]);
  const properties = schema.properties as Record<string, Json> | undefined;
  if (properties) {
    out.push([path, "fields", Object.keys(properties).sort()]);
    for (const [name, sub] of Object.entries(properties)) out.push(...facts(sub, `${path}.${name}`));
  }
  if (schema.items) out.push(...facts(schema.items as Json, `${path}[]`));
  return out;
}

describe("the status schema", () => {
  it("says the same in zod and in the CRD", () => {
    const fromZod = z.toJSONSchema(ProfileStatusSchema, { target: "openapi-3.0" }) as Json;
    const sort = (f: [string, string, unknown][]) => f.map((x) => JSON.stringify(x)).sort();
    expect(sort(facts(fromZod))).toEqual(sort(facts(STATUS_SCHEMA)));
  });
});
