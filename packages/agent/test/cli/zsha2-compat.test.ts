import { describe, expect, it } from "vitest";
import { rewriteSingleDashFlags } from "../../src/cli/zsha2-compat.js";
import { programNameFor } from "../../src/cli/program.js";

describe("rewriteSingleDashFlags", () => {
  it("turns zsha2's single-dash long flags into double-dash ones", () => {
    expect(rewriteSingleDashFlags(["status", "-json"])).toEqual(["status", "--json"]);
    expect(rewriteSingleDashFlags(["demote", "-yes", "-timeout", "900", "-socket", "/run/x.sock", "-config=/etc/m.yaml"])).toEqual([
      "demote",
      "--yes",
      "--timeout",
      "900",
      "--socket",
      "/run/x.sock",
      "--config=/etc/m.yaml",
    ]);
    expect(rewriteSingleDashFlags(["stop-node", "-keepui", "-stopvip"])).toEqual(["stop-node", "--keepui", "--stopvip"]);
  });

  it("leaves short flags, double-dash flags, values and anything after -- alone", () => {
    expect(rewriteSingleDashFlags(["-h", "--json", "-jsonx", "json", "--", "-json"])).toEqual(["-h", "--json", "-jsonx", "json", "--", "-json"]);
  });
});

describe("programNameFor", () => {
  it("answers to zsha2 only when invoked by that name", () => {
    expect(programNameFor("/usr/bin/zsha2")).toBe("zsha2");
    expect(programNameFor("/opt/mnha/dist/cli/zsha2.js")).toBe("zsha2");
    expect(programNameFor("/usr/bin/mnha")).toBe("mnha");
    expect(programNameFor("/work/main/packages/agent/dist/cli/main.js")).toBe("mnha");
    expect(programNameFor(undefined)).toBe("mnha");
  });
});
