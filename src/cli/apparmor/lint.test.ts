import { describe, expect, it } from "vitest";
import { AppArmorProfileSpecSchema } from "../../api/apparmor.ts";
import { lintAppArmor } from "./lint.ts";

const spec = (input: object) => AppArmorProfileSpecSchema.parse(input);

describe("lintAppArmor", () => {
  it("is quiet about an enforcing profile with container-sized capabilities, and about rawPolicy", () => {
    expect(
      lintAppArmor(spec({ executables: ["/bin/sh"], capabilities: ["chown", "net_bind_service"] })),
    ).toEqual([]);
    expect(lintAppArmor(spec({ rawPolicy: "profile x {}\n" }))).toEqual([]);
  });

  it("flags complain mode and capabilities that reach the host, each with a patch", () => {
    const findings = lintAppArmor(
      spec({ mode: "complain", capabilities: ["chown", "sys_admin", "sys_module"] }),
    );
    expect(findings.map((f) => `${f.rule} ${f.path} ${JSON.stringify(f.fix.patch)}`)).toEqual([
      'apparmor-complain-mode mode [{"op":"replace","path":"/mode","value":"enforce"}]',
      'apparmor-host-capability capabilities[1] [{"op":"remove","path":"/capabilities/1"}]',
      'apparmor-host-capability capabilities[2] [{"op":"remove","path":"/capabilities/2"}]',
    ]);
    expect(findings.every((f) => f.severity === "warning")).toBe(true);
  });
});
