import { describe, expect, it } from "vitest";
import { ByteBudget } from "./byte-budget.ts";

describe("ByteBudget", () => {
  it("gives out bytes up to its limit, refuses what does not fit without taking it, and takes back", () => {
    const budget = new ByteBudget(10);
    expect(budget.take(6)).toBe(true);
    expect(budget.take(5)).toBe(false);
    expect(budget.inUse).toBe(6);
    expect(budget.take(4)).toBe(true);
    expect(budget.take(1)).toBe(false);
    budget.release(6);
    expect(budget.take(5)).toBe(true);
    expect(budget.inUse).toBe(9);
  });

  it("never goes below zero on a release it did not give (a reader released twice)", () => {
    const budget = new ByteBudget(10);
    budget.release(5);
    expect(budget.inUse).toBe(0);
    expect(budget.take(11)).toBe(false);
  });
});
