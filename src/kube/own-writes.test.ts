import { describe, expect, it } from "vitest";
import { OwnWrites } from "./own-writes.ts";

describe("OwnWrites", () => {
  it("answers with the own write until the cache reaches its resourceVersion, then forgets it", () => {
    const own = new OwnWrites<string>();
    expect(own.current("p", "10", "cached@10")).toBe("cached@10");
    own.wrote("p", "12", "written@12");
    expect(own.cacheBehind("p", "10")).toBe(true);
    expect(own.current("p", "11", "cached@11")).toBe("written@12");
    // The watch delivered the write (or something newer): the cache is the truth again, for good.
    expect(own.current("p", "12", "cached@12")).toBe("cached@12");
    expect(own.current("p", "11", "cached@11")).toBe("cached@11");
  });

  it("keeps keys apart, forgets a deleted object, and compares resourceVersions as numbers", () => {
    const own = new OwnWrites<number>();
    own.wrote("a", "100", 1);
    own.wrote("b", "9", 2);
    expect(own.cacheBehind("a", "99")).toBe(true);
    // "9" < "100" as numbers, not as strings.
    expect(own.cacheBehind("b", "10")).toBe(false);
    own.forget("a");
    expect(own.cacheBehind("a", "99")).toBe(false);
    // A resourceVersion that is not a number proves nothing: the cache is taken as it is.
    own.wrote("c", "5", 3);
    expect(own.cacheBehind("c", undefined)).toBe(false);
  });
});
