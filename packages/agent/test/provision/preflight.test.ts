import { describe, expect, it } from "vitest";
import { combinePreflight, findOtherHaSuites, inSubnet, preflightFailed, renderPreflightTable, serviceCommandsCheck, systemBusCheck, type CheckResult, type NodePreflight } from "../../src/provision/preflight.js";

const ok = (id: string, value = "ok"): CheckResult => ({ id, title: id, status: "pass", value, fix: "" });
function node(hostname: string, overrides: Partial<NodePreflight> = {}): NodePreflight {
  return { hostname, platformVersion: "4.8.0", licenseType: "enterprise", checks: [ok("cpus", "8"), ok("memory", "16.0 GB")], ...overrides };
}

describe("preflight", () => {
  it("inSubnet", () => {
    expect(inSubnet("10.0.0.100", "10.0.0.11", 24)).toBe(true);
    expect(inSubnet("10.0.1.100", "10.0.0.11", 24)).toBe(false);
    expect(inSubnet("10.0.1.100", "10.0.0.11", 16)).toBe(true);
    expect(inSubnet("10.0.0.300", "10.0.0.11", 24)).toBe(false);
  });

  it("one table: both nodes pass, the platform, license and clock compared", () => {
    const rows = combinePreflight(node("mn1"), node("mn2"), { offsetMs: 12, uncertaintyMs: 3 });
    expect(preflightFailed(rows)).toBe(false);
    expect(rows.map((r) => r.id)).toEqual(["cpus", "memory", "same-platform-version", "same-license-type", "clock"]);
    const table = renderPreflightTable(rows, ["mn1", "mn2"]);
    expect(table.split("\n")[0]).toMatch(/^check\s+mn1\s+mn2\s+result\s+fix$/);
    expect(table).toContain("+12 ms (±3)");
  });

  it("the D-Bus system bus: needed only under systemd; missing there is a warning that names the fix", () => {
    expect(systemBusCheck(() => false)).toMatchObject({ id: "system-bus", status: "pass", value: "not needed (systemd is not PID 1)" });
    expect(systemBusCheck(() => true)).toMatchObject({ status: "pass", value: "/run/dbus/system_bus_socket" });
    const missing = systemBusCheck((path) => path === "/run/systemd/system");
    expect(missing).toMatchObject({ status: "warn", value: "missing" });
    expect(missing.fix).toMatch(/^install and start dbus \(apt install dbus, or dnf install dbus\): without \/run\/dbus\/system_bus_socket restores, stop-node/);
  });

  it("the default services' commands: found in the agent's PATH, or a warning that says what would fail and how to fix it", () => {
    const installed = new Set(["/usr/bin/zstack-ctl", "/bin/systemctl"]);
    expect(serviceCommandsCheck((path) => installed.has(path))).toEqual({ id: "service-commands", title: "service commands (zstack-ctl, systemctl)", status: "pass", value: "/usr/bin/zstack-ctl, /bin/systemctl", fix: "" });
    const missing = serviceCommandsCheck((path) => path === "/bin/systemctl");
    expect(missing).toMatchObject({ status: "warn", value: "zstack-ctl missing" });
    expect(missing.fix).toMatch(/^zstack-ctl \(the default services' command for mn, ui\) not found in \/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin: each restore or stop of those services would fail \(command not found\), so one down on both nodes would leave nobody holding the VIP; install the platform first/);
    // Each missing program names the services it serves: systemctl is the database's.
    const none = serviceCommandsCheck(() => false);
    expect(none.value).toBe("zstack-ctl, systemctl missing");
    expect(none.fix).toMatch(/^zstack-ctl \(the default services' command for mn, ui\) and systemctl \(the default services' command for db\) not found in /);
  });

  it("a warning with the same fix on both nodes says the fix once; different fixes are named per node", () => {
    const warn = (fix: string): CheckResult => ({ id: "service-commands", title: "service commands", status: "warn", value: "zstack-ctl missing", fix });
    const same = combinePreflight(node("mn1", { checks: [warn("install zstack-ctl")] }), node("mn2", { checks: [warn("install zstack-ctl")] }), { offsetMs: 0, uncertaintyMs: 1 });
    expect(same.find((r) => r.id === "service-commands")?.fix).toBe("both nodes: install zstack-ctl");
    const differ = combinePreflight(node("mn1", { checks: [warn("fix a")] }), node("mn2", { checks: [warn("fix b")] }), { offsetMs: 0, uncertaintyMs: 1 });
    expect(differ.find((r) => r.id === "service-commands")?.fix).toBe("mn1: fix a; mn2: fix b");
    const one = combinePreflight(node("mn1", { checks: [warn("fix a")] }), node("mn2", { checks: [ok("service-commands")] }), { offsetMs: 0, uncertaintyMs: 1 });
    expect(one.find((r) => r.id === "service-commands")).toMatchObject({ status: "warn", fix: "mn1: fix a" });
  });

  it("a different platform version fails and names the fix", () => {
    const rows = combinePreflight(node("mn1"), node("mn2", { platformVersion: "4.7.0" }), { offsetMs: 0, uncertaintyMs: 1 });
    expect(preflightFailed(rows)).toBe(true);
    const row = rows.find((r) => r.id === "same-platform-version");
    expect(row).toMatchObject({ status: "fail", values: ["4.8.0", "4.7.0"] });
    expect(row?.fix).toContain("same platform version");
  });

  it("a node's own failure is the row's result, with that node's fix", () => {
    const weak = node("mn2", { checks: [{ id: "cpus", title: "CPUs >= 8", status: "fail", value: "4", fix: "give the MN at least 8 CPUs" }, ok("memory")] });
    const rows = combinePreflight(node("mn1"), weak, { offsetMs: 0, uncertaintyMs: 1 });
    expect(rows[0]).toMatchObject({ id: "cpus", status: "fail", values: ["8", "4"], fix: "mn2: give the MN at least 8 CPUs" });
  });

  it("clocks more than 500 ms apart fail; different licenses fail", () => {
    const rows = combinePreflight(node("mn1"), node("mn2", { licenseType: "trial" }), { offsetMs: -800, uncertaintyMs: 2 });
    expect(rows.find((r) => r.id === "clock")?.status).toBe("fail");
    expect(rows.find((r) => r.id === "same-license-type")?.status).toBe("fail");
  });

  it("finds other HA suites among processes", () => {
    expect(findOtherHaSuites([{ pid: 5, argv: ["/usr/sbin/sshd", "-D"] }])).toEqual([]);
    expect(findOtherHaSuites([{ pid: 6, argv: ["/usr/sbin/keepalived", "-n"] }])).toEqual(["keepalived not run by mnha (pid 6)"]);
    expect(findOtherHaSuites([{ pid: 7, argv: ["/usr/local/bin/zstack-hamon"] }])[0]).toContain("zstack-hamon");
    expect(findOtherHaSuites([{ pid: 8, argv: ["/opt/mnha/current/node/bin/node", "/opt/mnha/current/app/bin/mnha.js", "agent", "--config", "/etc/mnha/mnha.yaml"] }])).toEqual(["an mnha agent (pid 8)"]);
  });
});
