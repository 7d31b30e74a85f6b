import { describe, expect, it } from "vitest";
import { healthProblem } from "../../src/provision/install-ha.js";
import { sampleStatus } from "../control/fake-control.js";

describe("install-ha's wait for a healthy pair", () => {
  it("a pair with one holder and both nodes eligible is healthy", () => {
    const report = sampleStatus();
    if (!("role" in report.peer)) throw new Error("the sample peer has a role");
    report.peer.eligible = true;
    report.peer.reasons = [];
    expect(healthProblem(report)).toBeNull();
  });

  it("with nobody holding the VIP it says, for each node, why it does not take it", () => {
    const report = sampleStatus();
    report.vipOwner = null;
    report.self.role = "standby";
    report.self.eligible = false;
    report.self.reasons = ["critical service mn is down"];
    report.self.keepalived = "fault";
    report.self.services[0] = { name: "mn", healthy: false, critical: true, detail: "connect ECONNREFUSED 127.0.0.1:8080" };
    expect(healthProblem(report)).toBe(
      "nobody holds the VIP (mn1: standby, not eligible: critical service mn is down, keepalived fault, mn down (connect ECONNREFUSED 127.0.0.1:8080); " +
        "mn2: standby, not eligible: critical service db is down, keepalived fault, db down (connect ECONNREFUSED 127.0.0.1:3306))",
    );
  });

  it("a peer not connected comes first: nothing it reports is current", () => {
    const report = sampleStatus();
    report.vipOwner = null;
    report.peer = { node: "mn2", address: "10.0.0.12", connected: false, lastHeardMsAgo: null };
    expect(healthProblem(report)).toBe("the peer is not connected");
  });
});
