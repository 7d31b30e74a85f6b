/**
 * Reading V8 heap snapshots (the .heapsnapshot JSON that the inspector and
 * --heapsnapshot-signal write): what each kind of object weighs, what grew between two
 * snapshots of one process, and what holds the objects that grew. Pure: the callers read the
 * files.
 */

/** The parts of a .heapsnapshot file this reads. */
export interface HeapSnapshotJson {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface KindTotals {
  count: number;
  selfBytes: number;
}

/** One kind of object in a diff: `type:name` (strings and code by type alone). */
export interface KindDiff {
  kind: string;
  before: KindTotals;
  after: KindTotals;
}

// Strings and code are grouped by type alone: their names are their contents.
const UNNAMED_TYPES = new Set(["string", "concatenated string", "sliced string", "code", "number", "regexp"]);

interface Layout {
  nodeFieldCount: number;
  edgeFieldCount: number;
  type: number;
  name: number;
  selfSize: number;
  edgeCount: number;
  edgeType: number;
  edgeName: number;
  edgeTo: number;
  nodeTypes: string[];
  edgeTypes: string[];
}

function layoutOf(snapshot: HeapSnapshotJson): Layout {
  const { node_fields: nodeFields, edge_fields: edgeFields, node_types: nodeTypes, edge_types: edgeTypes } = snapshot.snapshot.meta;
  const need = (fields: string[], field: string) => {
    const index = fields.indexOf(field);
    if (index < 0) throw new Error(`not a V8 heap snapshot this reads: no ${field} field`);
    return index;
  };
  return {
    nodeFieldCount: nodeFields.length,
    edgeFieldCount: edgeFields.length,
    type: need(nodeFields, "type"),
    name: need(nodeFields, "name"),
    selfSize: need(nodeFields, "self_size"),
    edgeCount: need(nodeFields, "edge_count"),
    edgeType: need(edgeFields, "type"),
    edgeName: need(edgeFields, "name_or_index"),
    edgeTo: need(edgeFields, "to_node"),
    nodeTypes: nodeTypes[0],
    edgeTypes: edgeTypes[0],
  };
}

function kindOf(snapshot: HeapSnapshotJson, layout: Layout, node: number): string {
  const type = layout.nodeTypes[snapshot.nodes[node + layout.type]!] ?? "?";
  if (UNNAMED_TYPES.has(type)) return type;
  return `${type}:${(snapshot.strings[snapshot.nodes[node + layout.name]!] ?? "").slice(0, 80)}`;
}

/** Count and self size of every kind of object in the snapshot. */
export function summarizeSnapshot(snapshot: HeapSnapshotJson): Map<string, KindTotals> {
  const layout = layoutOf(snapshot);
  const totals = new Map<string, KindTotals>();
  for (let node = 0; node < snapshot.nodes.length; node += layout.nodeFieldCount) {
    const kind = kindOf(snapshot, layout, node);
    const entry = totals.get(kind) ?? { count: 0, selfBytes: 0 };
    entry.count += 1;
    entry.selfBytes += snapshot.nodes[node + layout.selfSize]!;
    totals.set(kind, entry);
  }
  return totals;
}

/** Every kind whose count or size changed, largest change in bytes first. */
export function diffSummaries(before: Map<string, KindTotals>, after: Map<string, KindTotals>): KindDiff[] {
  const none: KindTotals = { count: 0, selfBytes: 0 };
  const kinds = new Set([...before.keys(), ...after.keys()]);
  const rows: KindDiff[] = [];
  for (const kind of kinds) {
    const a = before.get(kind) ?? none;
    const b = after.get(kind) ?? none;
    if (a.count !== b.count || a.selfBytes !== b.selfBytes) rows.push({ kind, before: a, after: b });
  }
  return rows.sort((x, y) => Math.abs(y.after.selfBytes - y.before.selfBytes) - Math.abs(x.after.selfBytes - x.before.selfBytes) || x.kind.localeCompare(y.kind));
}

export function totalSelfBytes(summary: Map<string, KindTotals>): number {
  let total = 0;
  for (const { selfBytes } of summary.values()) total += selfBytes;
  return total;
}

/**
 * For every object of `kind`: the chain of its first strong retainers, `depth` steps up, as
 * "Owner.edge <- Owner.edge ...", counted. Diffing the counts of two snapshots names the
 * structure that holds what grew. "First" is the first edge in the snapshot's order, which V8
 * may change between snapshots: a chain that loses as many as another gains is one object
 * seen by two paths, not growth.
 */
export function retainerChains(snapshot: HeapSnapshotJson, kind: string, depth = 4): Map<string, number> {
  const layout = layoutOf(snapshot);
  const retainers = new Map<number, { from: number; edge: string }>();
  const targets: number[] = [];
  let edge = 0;
  for (let node = 0; node < snapshot.nodes.length; node += layout.nodeFieldCount) {
    const edges = snapshot.nodes[node + layout.edgeCount]!;
    for (let i = 0; i < edges; i += 1, edge += layout.edgeFieldCount) {
      const edgeType = layout.edgeTypes[snapshot.edges[edge + layout.edgeType]!];
      if (edgeType === "weak") continue;
      const to = snapshot.edges[edge + layout.edgeTo]!;
      if (retainers.has(to)) continue;
      const nameOrIndex = snapshot.edges[edge + layout.edgeName]!;
      // An array's slots are one place: "[]", not "[0]", "[1]"..., so a growing array is one chain.
      const edgeName = edgeType === "element" || edgeType === "hidden" ? "[]" : (snapshot.strings[nameOrIndex] ?? "?");
      retainers.set(to, { from: node, edge: edgeName });
    }
    if (kindOf(snapshot, layout, node) === kind) targets.push(node);
  }
  const chains = new Map<string, number>();
  for (const target of targets) {
    const steps: string[] = [];
    let current = target;
    for (let step = 0; step < depth; step += 1) {
      const retainer = retainers.get(current);
      if (!retainer) break;
      steps.push(`${kindOf(snapshot, layout, retainer.from)}.${retainer.edge}`);
      current = retainer.from;
    }
    const chain = steps.length > 0 ? steps.join(" <- ") : "(no strong retainer)";
    chains.set(chain, (chains.get(chain) ?? 0) + 1);
  }
  return chains;
}
