import { closeSync, fstatSync, openSync, readFileSync, statSync, type Stats } from "node:fs";
import { isIP } from "node:net";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { cronExpressionProblem } from "./cron.js";
import { ConfigError, MnhaError, type ConfigProblem } from "./errors.js";

/**
 * The agent's configuration: one YAML file per node. Every field is described in
 * docs/mnha.example.yaml. Loading validates everything before anything is used; a
 * config with any problem is refused whole.
 */

const nodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "a name of 1-63 letters, digits, '.', '_' or '-'");
/** The peer secret must hold at least as much as 32 random bytes (256 bits): offline guessing stays hopeless. */
export const MIN_SECRET_BITS = 256;
export const GOOD_SECRET_COMMAND = "head -c 32 /dev/urandom | base64";

const ipv4 = z.string().refine((v) => isIP(v) === 4, "an IPv4 address such as 10.0.0.11");
const port = z.number().int().min(1).max(65535);
const ms = (min: number, max: number) => z.number().int().min(min).max(max);
const count = z.number().int().min(1).max(100);
const interfaceName = z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/, "a network interface name of 1-15 characters, such as eth0 or br_eth0");
const absolutePath = z.string().refine((v) => isAbsolute(v), "an absolute path");
const commandArgv = z.array(z.string().min(1)).min(1, "a command as a list of arguments, such as [systemctl, restart, mariadb]");
const cronExpression = z.string().superRefine((value, ctx) => {
  // croner's reason ("Invalid value for minute: 61") tells which field to fix.
  const problem = cronExpressionProblem(value);
  if (problem !== null) ctx.addIssue({ code: "custom", message: `a cron expression such as "*/15 * * * *" (minute hour day month weekday); this one: ${problem}` });
});
const statusPattern = z.union([z.number().int().min(100).max(599), z.string().regex(/^[1-5]xx$/, "a status such as 200 or a class such as 2xx")]);

const checkTiming = {
  intervalMs: ms(50, 600_000).default(200),
  timeoutMs: ms(10, 600_000).default(1_000),
  rise: count.default(2),
  fall: count.default(2),
};

export const CheckSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("tcp"), host: z.string().min(1).default("127.0.0.1"), port, ...checkTiming }),
  z.strictObject({
    kind: z.literal("http"),
    url: z.string().regex(/^https?:\/\/[^\s]+$/, "an http:// or https:// URL"),
    expectStatus: z.array(statusPattern).min(1).default(["2xx", "3xx"]),
    /** Accept self-signed certificates for https checks against the local service. */
    insecure: z.boolean().default(false),
    ...checkTiming,
  }),
  z.strictObject({ kind: z.literal("command"), command: commandArgv, ...checkTiming }),
  z.strictObject({ kind: z.literal("systemd"), unit: z.string().regex(/^[A-Za-z0-9:_.@\\-]+$/, "a systemd unit name such as mariadb.service"), ...checkTiming }),
  /** MariaDB over its local socket: a real query, with replication state in the detail (db.*: how to log in). */
  z.strictObject({ kind: z.literal("mariadb"), socket: absolutePath.default("/run/mysqld/mysqld.sock"), user: z.string().min(1).default("root"), passwordFile: absolutePath.optional(), ...checkTiming }),
  z
    .strictObject({ kind: z.literal("process"), name: z.string().min(1).max(15).optional(), pidFile: absolutePath.optional(), ...checkTiming })
    .refine((c) => (c.name === undefined) !== (c.pidFile === undefined), "exactly one of name or pidFile"),
]);
export type CheckConfig = z.infer<typeof CheckSchema>;

export const RestoreSchema = z.strictObject({
  command: commandArgv,
  timeoutMs: ms(100, 3_600_000).default(60_000),
  maxAttempts: z.number().int().min(0).max(1000).default(5),
  backoffInitialMs: ms(0, 3_600_000).default(2_000),
  backoffMaxMs: ms(0, 3_600_000).default(60_000),
});
export type RestoreConfig = z.infer<typeof RestoreSchema>;

export const ServiceSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "a short lower-case name such as mn, ui or db"),
  /** A critical service that fails makes this node ineligible to hold the VIP. */
  critical: z.boolean().default(true),
  check: CheckSchema,
  restore: RestoreSchema.optional(),
  /** `mnha start-node` runs this to start the service (default: the restore command). */
  start: commandArgv.optional(),
  /** `mnha stop-node` runs this to stop the service; a service without it is left running. */
  stop: commandArgv.optional(),
});
export type ServiceConfig = z.infer<typeof ServiceSchema>;

/** The MN service, the UI and the database, as on a ZStack management node. */
export const DEFAULT_SERVICES: z.input<typeof ServiceSchema>[] = [
  // `stop`: what `mnha stop-node` (zsha2's stop-node) and a restore's maintenance stop run; without it they leave the service running.
  { name: "mn", check: { kind: "http", url: "http://127.0.0.1:8080/", expectStatus: ["2xx", "3xx", "4xx"] }, restore: { command: ["zstack-ctl", "start_node"] }, stop: ["zstack-ctl", "stop_node"] },
  { name: "ui", check: { kind: "http", url: "http://127.0.0.1:5000/", expectStatus: ["2xx", "3xx", "4xx"] }, restore: { command: ["zstack-ctl", "start_ui"] }, stop: ["zstack-ctl", "stop_ui"] },
  { name: "db", check: { kind: "tcp", host: "127.0.0.1", port: 3306 }, restore: { command: ["systemctl", "restart", "mariadb"] } },
];

export const ConfigSchema = z
  .strictObject({
    node: z.strictObject({
      name: nodeName,
      /** This node's management address (zsha2: nodeip); the peer link and VRRP use it. */
      address: ipv4,
    }),
    peers: z
      .array(
        z.strictObject({
          name: nodeName,
          address: ipv4,
          port: port.default(7946),
        }),
      )
      .length(1, "exactly one peer: mnha pairs two management nodes"),
    listen: z
      .strictObject({
        address: ipv4.optional(),
        port: port.default(7946),
      })
      .prefault({}),
    vip: z.strictObject({
      address: ipv4,
      prefix: z.number().int().min(1).max(32).default(24),
      interface: interfaceName,
    }),
    gateway: z.strictObject({
      address: ipv4,
      intervalMs: ms(100, 60_000).default(500),
      timeoutMs: ms(50, 60_000).default(400),
      fall: count.default(3),
      rise: count.default(2),
    }),
    auth: z
      .strictObject({
        /** Inline secret; prefer secretFile so that the secret is not in the config file. */
        secret: z
          .string()
          .refine((v) => secretStrengthBits(v) >= MIN_SECRET_BITS, `a secret of 32 random bytes' worth (${MIN_SECRET_BITS} bits); make one with: ${GOOD_SECRET_COMMAND}`)
          .optional(),
        secretFile: absolutePath.optional(),
      })
      .refine((a) => (a.secret === undefined) !== (a.secretFile === undefined), "exactly one of auth.secret or auth.secretFile"),
    services: z.array(ServiceSchema).max(32).prefault(DEFAULT_SERVICES),
    timings: z
      .strictObject({
        heartbeatIntervalMs: ms(20, 10_000).default(100),
        heartbeatMisses: count.default(3),
        /** How long a renewed lease stays valid; keepalived drops the VIP when it runs out. */
        leaseMs: ms(100, 60_000).default(600),
        /** Extra wait, past the holder's lease, before a standby claims. */
        takeoverMarginMs: ms(0, 60_000).default(150),
        /** Bound on how far the two nodes' monotonic clocks may drift apart (fraction). */
        maxClockDrift: z.number().min(0).max(0.5).default(0.01),
        /** How long a node that just started waits to hear its peer before deciding alone. */
        startupGraceMs: ms(0, 600_000).optional(),
        /** How long a planned switchover may take before it is abandoned. */
        handoffTimeoutMs: ms(50, 60_000).default(1_500),
        reconnectInitialMs: ms(10, 60_000).default(100),
        reconnectMaxMs: ms(10, 600_000).default(2_000),
        /** Liveness watchdog: a holder whose VIP is not on its interface this long has Keepalived repaired... */
        vipRepairAfterMs: ms(100, 600_000).default(3_000),
        /** ...and if it is still not served this long, gives the role up (handoff, else step down). */
        vipGiveUpAfterMs: ms(200, 600_000).default(8_000),
        /** A standby whose peer holds the role without serving the VIP this long claims it (ARP probe, higher epoch). */
        peerVipUnansweredMs: ms(300, 600_000).default(12_000),
      })
      .prefault({}),
    /**
     * Optional third vote (`mnha witness` on a third machine, docs/protocol.md "The witness"):
     * with it, a node claims the VIP only with the witness's grant, and a holder that loses
     * both the peer and the witness gives the VIP up. Same secret as the peer link.
     */
    witness: z
      .strictObject({
        address: ipv4,
        port: port.default(7947),
        /** How long one grant lasts at the witness; a takeover after a holder's death waits at least this long. */
        leaseMs: ms(1_000, 120_000).default(2_000),
        /** A request unanswered this long counts as "witness unreachable". */
        requestTimeoutMs: ms(100, 10_000).default(500),
      })
      .optional(),
    arpGuard: z
      .strictObject({
        enabled: z.boolean().default(true),
        command: absolutePath.default("/usr/bin/arping"),
        probeTimeoutMs: ms(50, 10_000).default(200),
        /** While the peer is lost and someone answers for the VIP, probe again this often. */
        retryIntervalMs: ms(50, 60_000).default(500),
        /**
         * The holder asks the segment this often whether anyone else answers for the VIP
         * (two holders that cannot talk settle it by MAC). 0 turns the check off.
         */
        duplicateCheckIntervalMs: z.number().int().min(0).max(60_000).default(500),
      })
      .prefault({}),
    keepalived: z
      .strictObject({
        binary: absolutePath.default("/usr/sbin/keepalived"),
        /** child: the agent runs keepalived and restarts it; service: an existing systemd unit. */
        mode: z.enum(["child", "service"]).default("child"),
        configPath: absolutePath.optional(),
        serviceName: z.string().default("keepalived"),
        virtualRouterId: z.number().int().min(1).max(255).default(51),
        priority: z.number().int().min(1).max(254).default(200),
        advertIntMs: ms(10, 40_000).default(100),
        /**
         * VRRP master-down timer in adverts (RFC: 3). Only an elected node waits on it, but
         * during a handoff the taker waits as BACKUP: fewer adverts means less margin there.
         */
        downTimerAdverts: z.number().int().min(1).max(100).default(3),
        /** Gratuitous ARPs sent when this node becomes MASTER. */
        garpRepeat: z.number().int().min(1).max(100).default(3),
      })
      .prefault({}),
    store: z
      .strictObject({
        /** The SQLite database. Default: <dataDir>/mnha.db */
        path: absolutePath.optional(),
        /** Monitoring samples (CPU, memory, disk, traffic, check latency) this often. */
        sampleIntervalMs: ms(1_000, 3_600_000).default(10_000),
        retention: z
          .strictObject({
            maxAgeDays: z.number().int().min(1).max(3650).default(90),
            maxBytes: z.number().int().min(1024 * 1024).default(1024 * 1024 * 1024),
          })
          .prefault({}),
        schedules: z
          .strictObject({
            retention: cronExpression.default("*/15 * * * *"),
            optimize: cronExpression.default("30 3 * * *"),
            integrityCheck: cronExpression.default("0 */6 * * *"),
            dailySummary: cronExpression.default("55 23 * * *"),
          })
          .prefault({}),
        /** Own records kept in memory while the store cannot write (then the oldest are dropped). */
        queueLimit: z.number().int().min(1_000).max(10_000_000).default(200_000),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Prometheus endpoint; loopback unless you mean to expose it. */
        address: ipv4.default("127.0.0.1"),
        port: port.default(9746),
      })
      .prefault({}),
    /**
     * MariaDB replication between the two MNs, managed by mnha (docs/database.md). Off by
     * default so that an existing set-up keeps working unchanged.
     */
    db: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** The local server's Unix socket; mnha logs in over it as root. */
        socket: absolutePath.default("/run/mysqld/mysqld.sock"),
        rootUser: z.string().min(1).default("root"),
        /** A root-only (0600) file holding the root password; none: log in without one (unix_socket). */
        rootPasswordFile: absolutePath.optional(),
        /** The peer's MariaDB (default: the peer's address, port 3306). */
        peerAddress: ipv4.optional(),
        peerPort: port.default(3306),
        replication: z
          .strictObject({
            user: z.string().regex(/^[A-Za-z0-9_]{1,32}$/, "a user name of 1-32 letters, digits or '_'").default("mnha_repl"),
            /** Generated by `mnha db setup-replication` if absent (0600); the same file on both nodes. */
            passwordFile: absolutePath.default("/etc/mnha/db-replication-password"),
            /** Seconds between the replica's reconnect attempts to the peer. */
            connectRetrySeconds: z.number().int().min(1).max(3600).default(1),
            /**
             * A replica a MariaDB restart left stopped with no error (skip-slave-start) is started
             * by the agent; false: left for a person to start (said once), the node not eligible meanwhile.
             */
            startAfterRestart: z.boolean().default(true),
          })
          .prefault({}),
        semiSync: z
          .strictObject({
            enabled: z.boolean().default(true),
            /** A commit waits this long for the peer's acknowledgement, then falls back to asynchronous. */
            timeoutMs: ms(10, 600_000).default(1_000),
          })
          .prefault({}),
        /** Planned switchover: how long the holder waits for the peer to apply every transaction. */
        catchUpTimeoutMs: ms(100, 3_600_000).default(10_000),
        /** A standby further behind than this may not take over from a live holder. */
        maxLagForFailoverMs: ms(0, 3_600_000).default(5_000),
        /** Holder dead and the standby behind: take over anyway (true) or stay without a holder (false). */
        availabilityOverCatchUp: z.boolean().default(true),
        connectTimeoutMs: ms(100, 60_000).default(2_000),
        /** The MariaDB client programs used by `mnha db seed`. */
        clientBinary: absolutePath.default("/usr/bin/mariadb"),
        dumpBinary: absolutePath.default("/usr/bin/mariadb-dump"),
      })
      .prefault({}),
    /** Database backups (docs/disaster-recovery.md): scheduled on the VIP holder, kept by count and age. */
    backup: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Default: <dataDir>/backups */
        dir: absolutePath.optional(),
        schedule: cronExpression.default("15 2 * * *"),
        keep: z
          .strictObject({
            count: z.number().int().min(1).max(10_000).default(7),
            /** 0: no age limit. The newest good backup is kept whatever its age. */
            days: z.number().int().min(0).max(3650).default(30),
          })
          .prefault({}),
        /** A copy of each backup on another host, with real rsync over SSH (key auth, strict host keys). */
        remote: z
          .strictObject({
            host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/, "a host name or IPv4 address"),
            user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a user name such as backup"),
            port: port.default(22),
            dir: z.string().regex(/^\/[A-Za-z0-9._/+-]*$/, "an absolute path of letters, digits and ._/+-"),
            keyFile: z.string().regex(/^\/[A-Za-z0-9._/+-]*$/, "an absolute path of letters, digits and ._/+-"),
            knownHostsFile: z.string().regex(/^\/[A-Za-z0-9._/+-]*$/, "an absolute path of letters, digits and ._/+-").optional(),
            keep: z.number().int().min(1).max(10_000).default(30),
          })
          .optional(),
      })
      .prefault({}),
    /** Maintenance mode hooks, e.g. to disable the platform's VM HA on enter and enable it on exit. */
    maintenance: z
      .strictObject({
        onEnter: commandArgv.optional(),
        onExit: commandArgv.optional(),
        hookTimeoutMs: ms(100, 600_000).default(30_000),
      })
      .prefault({}),
    /** Monitoring data kept in step from the holder to the standby with rsync over SSH. */
    dataSync: z
      .strictObject({
        /** Absolute directories, synced to the same path on the peer (e.g. Prometheus data). */
        dirs: z.array(absolutePath).max(16).default([]),
        schedule: cronExpression.default("*/5 * * * *"),
        /** The SSH identity install-ha sets up between the MNs. */
        sshKey: absolutePath.default("/root/.ssh/id_ed25519"),
        knownHostsFile: absolutePath.optional(),
        sshUser: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a user name such as root").default("root"),
        sshPort: port.default(22),
        rsync: absolutePath.default("/usr/bin/rsync"),
        timeoutMs: ms(1_000, 3_600_000).default(600_000),
      })
      .prefault({}),
    /** What `mnha collect-log` gathers besides the agent's own state. */
    diagnostics: z
      .strictObject({
        /** Agent log files (when not in journald). */
        logFiles: z.array(absolutePath).max(16).default([]),
        /** Shows the MariaDB replication state (argv), e.g. [mariadb, -e, "SHOW REPLICA STATUS"]. */
        replicationStatusCommand: commandArgv.optional(),
        mariadbErrorLog: absolutePath.optional(),
      })
      .prefault({}),
    /** The NTP server both MNs follow (install-ha -time-server): recorded; install-ha's preflight checks each clock against it. */
    timeServer: ipv4.optional(),
    dataDir: absolutePath.default("/var/lib/mnha"),
    controlSocket: absolutePath.default("/run/mnha/mnha.sock"),
    log: z.strictObject({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info") }).prefault({}),
  })
  .superRefine((c, ctx) => {
    const peer = c.peers[0];
    if (peer && peer.name === c.node.name) ctx.addIssue({ code: "custom", path: ["peers", 0, "name"], message: `a name different from node.name (${c.node.name})` });
    if (peer && peer.address === c.node.address) ctx.addIssue({ code: "custom", path: ["peers", 0, "address"], message: `an address different from node.address (${c.node.address})` });
    if (c.vip.address === c.node.address || c.vip.address === peer?.address)
      ctx.addIssue({ code: "custom", path: ["vip", "address"], message: "an address that belongs to neither node" });
    if (c.gateway.address === c.vip.address) ctx.addIssue({ code: "custom", path: ["gateway", "address"], message: "the gateway's own address, not the VIP" });
    const names = new Set<string>();
    c.services.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: "custom", path: ["services", i, "name"], message: `a unique service name (${s.name} appears twice)` });
      names.add(s.name);
      if (s.check.timeoutMs > Math.max(s.check.intervalMs * 10, 1_000) * 60)
        ctx.addIssue({ code: "custom", path: ["services", i, "check", "timeoutMs"], message: "a timeout not wildly longer than the interval" });
    });
    const t = c.timings;
    const lossMs = t.heartbeatIntervalMs * t.heartbeatMisses;
    if (t.leaseMs < t.heartbeatIntervalMs * 2)
      ctx.addIssue({ code: "custom", path: ["timings", "leaseMs"], message: `at least two heartbeat intervals (${t.heartbeatIntervalMs * 2} ms), so one late renewal does not drop the VIP` });
    if (lossMs > 60_000) ctx.addIssue({ code: "custom", path: ["timings", "heartbeatMisses"], message: "heartbeatIntervalMs x heartbeatMisses of at most 60 s" });
    if (t.vipGiveUpAfterMs <= t.vipRepairAfterMs) ctx.addIssue({ code: "custom", path: ["timings", "vipGiveUpAfterMs"], message: `more than timings.vipRepairAfterMs (${t.vipRepairAfterMs} ms): the repair goes first` });
    if (t.peerVipUnansweredMs <= t.vipGiveUpAfterMs) ctx.addIssue({ code: "custom", path: ["timings", "peerVipUnansweredMs"], message: `more than timings.vipGiveUpAfterMs (${t.vipGiveUpAfterMs} ms): a working holder gives the role up before its peer takes it` });
    if (t.reconnectMaxMs < t.reconnectInitialMs) ctx.addIssue({ code: "custom", path: ["timings", "reconnectMaxMs"], message: "a value not below reconnectInitialMs" });
    if (c.gateway.timeoutMs > c.gateway.intervalMs * 4) ctx.addIssue({ code: "custom", path: ["gateway", "timeoutMs"], message: `at most 4 x gateway.intervalMs (${c.gateway.intervalMs * 4})` });
    const k = c.keepalived;
    if (k.advertIntMs % 10 !== 0) ctx.addIssue({ code: "custom", path: ["keepalived", "advertIntMs"], message: "a multiple of 10 ms (VRRPv3 counts in centiseconds)" });
    // A node taking a handoff must notice a lost peer (and close its gate) before its own
    // Keepalived's master-down timer could make it MASTER beside the old holder.
    const downTimerMs = keepalivedDownTimerMs(k);
    if (lossMs >= downTimerMs)
      ctx.addIssue({
        code: "custom",
        path: ["timings", "heartbeatMisses"],
        message: `heartbeatIntervalMs x heartbeatMisses (${lossMs} ms) below Keepalived's master-down timer (${Math.round(downTimerMs)} ms = keepalived.downTimerAdverts x advertIntMs + skew); lower them or raise keepalived.downTimerAdverts`,
      });
  });

export type MnhaConfig = z.infer<typeof ConfigSchema>;
export type MnhaConfigInput = z.input<typeof ConfigSchema>;

/** What a loaded config holds besides the file's fields. */
export interface LoadedConfig {
  file: string;
  config: MnhaConfig;
  /** The peer secret, read from auth.secret or auth.secretFile. Never logged. */
  secret: string;
  derived: DerivedTimings;
}

export interface DerivedTimings {
  peerLossMs: number;
  startupGraceMs: number;
  /** Keepalived's master-down timer: downTimerAdverts × advertIntMs + skew (RFC 5798). */
  keepalivedDownTimerMs: number;
  keepalivedConfigPath: string;
}

/** VRRP's master-down interval: how long a BACKUP waits without adverts before it takes over. */
export function keepalivedDownTimerMs(k: { downTimerAdverts: number; advertIntMs: number; priority: number }): number {
  return k.downTimerAdverts * k.advertIntMs + ((256 - k.priority) * k.advertIntMs) / 256;
}

export function deriveTimings(config: MnhaConfig): DerivedTimings {
  const t = config.timings;
  const peerLossMs = t.heartbeatIntervalMs * t.heartbeatMisses;
  return {
    peerLossMs,
    // Long enough to hear a live peer, and for any lease it granted itself to run out.
    startupGraceMs: t.startupGraceMs ?? Math.max(peerLossMs * 2, Math.ceil(t.leaseMs * (1 + t.maxClockDrift)) + t.takeoverMarginMs),
    keepalivedDownTimerMs: keepalivedDownTimerMs(config.keepalived),
    keepalivedConfigPath: config.keepalived.configPath ?? resolve(config.dataDir, "keepalived.conf"),
  };
}

/** Validates a parsed object. Throws ConfigError naming each bad field. */
export function parseConfig(raw: unknown, file = "<config>"): MnhaConfig {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems: ConfigProblem[] = result.error.issues.map((issue) => {
      // An unknown key is reported at the key itself, where the operator will look.
      const fullPath = issue.code === "unrecognized_keys" && issue.keys.length === 1 ? [...issue.path, issue.keys[0] as string] : issue.path;
      const path = fullPath.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".").replace(/\.\[/g, "[");
      const value = valueAt(raw, fullPath as (string | number)[]);
      return { path: path || "(top level)", ...(value === undefined ? {} : { value: redactIfSecret(path, value) }), expected: describeIssue(issue) };
    });
    throw new ConfigError(file, problems);
  }
  return result.data;
}

/** Reads, parses and validates a config file, and reads the secret it names. */
export function loadConfig(file: string): LoadedConfig {
  const path = resolve(file);
  let text: string;
  let fileStat: Stats;
  try {
    // Owner and mode of the very file read (fstat on its descriptor): an inline secret depends on them.
    const fd = openSync(path, "r");
    try {
      fileStat = fstatSync(fd);
      text = readFileSync(fd, "utf8");
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new MnhaError("CONFIG_NOT_FOUND", `config file ${path} does not exist`, { hint: "pass --config FILE, or copy docs/mnha.example.yaml to /etc/mnha/mnha.yaml and edit it" });
    throw new MnhaError("CONFIG_UNREADABLE", `config file ${path} cannot be read (${code ?? "error"})`, { hint: "run as root, or check the file's permissions" });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw new MnhaError("CONFIG_SYNTAX", `config file ${path} is not valid YAML: ${first?.message.split("\n")[0] ?? "syntax error"}`, {
      hint: "fix the YAML syntax at the line shown (indentation and ':' after each key are the usual causes)",
      fields: { file: path },
    });
  }
  let raw: unknown;
  try {
    // Aliases are resolved here: a missing anchor or an alias bomb fails now, not at parse.
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new MnhaError("CONFIG_SYNTAX", `config file ${path} is not valid YAML: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`, {
      hint: "fix the YAML at the place named (every alias *name needs an anchor &name, and aliases may not multiply without bound)",
      fields: { file: path },
    });
  }
  const config = parseConfig(raw ?? {}, path);
  if (config.auth.secret !== undefined) checkInlineSecretFile(path, fileStat);
  const secret = readSecret(config, dirname(path));
  checkSecretStrength(secret, config.auth.secretFile ?? `${path} (auth.secret)`);
  return { file: path, config, secret, derived: deriveTimings(config) };
}

/**
 * A config file that holds auth.secret inline must be as private as a secret file: owned by
 * root (or by the user running mnha) and neither readable nor writable by group or others.
 */
export function checkInlineSecretFile(path: string, stat: Pick<Stats, "uid" | "mode">, runningUid: number | null = process.getuid?.() ?? null): void {
  const mode = (stat.mode & 0o777).toString(8).padStart(3, "0");
  const fix = `run: chown root:root ${path} && chmod 600 ${path} (or put the secret in a file named by auth.secretFile)`;
  if (stat.uid !== 0 && stat.uid !== runningUid) {
    throw new MnhaError("SECRET_INSECURE", `config file ${path} holds auth.secret inline but is owned by uid ${stat.uid}, not root (mode ${mode})`, {
      hint: fix,
      fields: { file: path, uid: stat.uid, mode },
    });
  }
  if ((stat.mode & 0o077) !== 0) {
    throw new MnhaError("SECRET_INSECURE", `config file ${path} holds auth.secret inline but is open to other users (mode ${mode})`, {
      hint: fix,
      fields: { file: path, uid: stat.uid, mode },
    });
  }
}

function readSecret(config: MnhaConfig, _baseDir: string): string {
  if (config.auth.secret !== undefined) return config.auth.secret;
  const file = config.auth.secretFile as string;
  let text: string;
  try {
    const stat = statSync(file);
    if ((stat.mode & 0o077) !== 0) {
      throw new MnhaError("SECRET_INSECURE", `secret file ${file} is readable by other users (mode ${(stat.mode & 0o777).toString(8)})`, {
        hint: `run: chmod 600 ${file}`,
      });
    }
    text = readFileSync(file, "utf8").trim();
  } catch (error) {
    if (error instanceof MnhaError) throw error;
    throw new MnhaError("SECRET_UNREADABLE", `secret file ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`, {
      hint: "create it with: umask 077; head -c 32 /dev/urandom | base64 > FILE (the same secret on both nodes)",
    });
  }
  // A short secret is refused by checkSecretStrength, naming this file; an empty one gets its own words.
  if (text.length === 0) {
    throw new MnhaError("SECRET_WEAK", `secret file ${file} is empty`, {
      hint: `make one on one node with: umask 077; ${GOOD_SECRET_COMMAND} > ${file} — then copy that file to the other node and restart both agents`,
      fields: { where: file },
    });
  }
  return text;
}

/** The effective config with secrets replaced, plus the fields operators know from zsha2. */
export function redactedConfig(config: MnhaConfig): Record<string, unknown> {
  const copy = structuredClone(config) as MnhaConfig;
  if (copy.auth.secret !== undefined) copy.auth.secret = "[redacted]";
  const peer = config.peers[0];
  return {
    nodeip: config.node.address,
    peerip: peer?.address ?? null,
    dbvip: config.vip.address,
    nic: config.vip.interface,
    gw: config.gateway.address,
    peerport: peer?.port ?? null,
    execUser: "root",
    ...copy,
  };
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

const SECRET_KEY = /secret|password|token/i;

/** The value shown in an error, with every secret inside it replaced, however deep. */
function redactIfSecret(path: string, value: unknown): unknown {
  if (SECRET_KEY.test(path)) return "[redacted]";
  return redactDeep(value, 0);
}

function redactDeep(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth > 32) return "[...]";
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, depth + 1));
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, SECRET_KEY.test(key) ? "[redacted]" : redactDeep(item, depth + 1)]));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined ? `a value (this field is required: ${issue.expected})` : `a value of type ${issue.expected}`;
    case "unrecognized_keys":
      return `no unknown field (${issue.keys.join(", ")}); check the spelling against docs/mnha.example.yaml`;
    case "too_small":
      if (!issue.message.startsWith("Too small")) return issue.message;
      return issue.origin === "array" ? `at least ${String(issue.minimum)} item(s)` : `a value of at least ${String(issue.minimum)}`;
    case "too_big":
      if (!issue.message.startsWith("Too big")) return issue.message;
      return issue.origin === "array" ? `at most ${String(issue.maximum)} item(s)` : `a value of at most ${String(issue.maximum)}`;
    case "invalid_value":
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_union": {
      const discriminator = /^Invalid discriminator value\. Expected (.*)$/.exec(issue.message);
      if (discriminator) return `one of ${discriminator[1]}`;
      return issue.message && issue.message !== "Invalid input" ? issue.message : "one of the documented forms";
    }
    default: {
      const discriminator = /^Invalid discriminator value\. Expected (.*)$/.exec(issue.message);
      return discriminator ? `one of ${discriminator[1]}` : issue.message;
    }
  }
}


/**
 * An upper bound of the randomness a secret can hold, from its alphabet: hex digits carry 4
 * bits a character, base64 (or base64url) 6, any other text at most log2(95) ≈ 6.57. A secret
 * with fewer than 12 distinct characters is counted as holding nothing (e.g. "aaaa…").
 */
export function secretStrengthBits(secret: string): number {
  if (new Set(secret).size < 12) return 0;
  if (/^[0-9a-fA-F]+$/.test(secret)) return secret.length * 4;
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(secret)) return secret.replace(/=+$/, "").length * 6;
  return Math.floor(secret.length * Math.log2(95));
}

/** Refuses a secret weaker than MIN_SECRET_BITS, saying how to make a good one. Never prints the secret. */
export function checkSecretStrength(secret: string, where: string): void {
  const bits = secretStrengthBits(secret);
  if (bits >= MIN_SECRET_BITS) return;
  throw new MnhaError("SECRET_WEAK", `the peer secret in ${where} is too weak: at most ${bits} bits, ${MIN_SECRET_BITS} needed (32 random bytes' worth)`, {
    hint: `make a new one on one node with: umask 077; ${GOOD_SECRET_COMMAND} > /etc/mnha/secret — then copy that file to the other node and restart both agents`,
    fields: { where, bits, required: MIN_SECRET_BITS },
  });
}
