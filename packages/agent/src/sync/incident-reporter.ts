/**
 * Turns repeated incidents into few audit events: the first of a kind is recorded at once,
 * later ones within the window are only counted and recorded as one summary when the window
 * ends. So a misbehaving peer costs the store a bounded number of events per hour.
 */
export interface Incident {
  /** Event type, e.g. "sync.ingest-refused". */
  type: string;
  /** How many records (or occurrences) this incident covers. */
  count: number;
  /** One line about this occurrence (e.g. the first refused record and why). */
  detail: string;
  fields?: Record<string, unknown>;
}

export interface IncidentReporterOptions {
  /** Records one event (and logs it). */
  record: (type: string, message: string, fields: Record<string, unknown>) => void;
  windowMs: number;
}

interface Pending {
  windowTimer: NodeJS.Timeout;
  suppressed: number;
  occurrences: number;
  lastDetail: string;
}

export class IncidentReporter {
  private readonly open = new Map<string, Pending>();

  constructor(private readonly options: IncidentReporterOptions) {}

  note(incident: Incident): void {
    const pending = this.open.get(incident.type);
    if (pending) {
      pending.suppressed += incident.count;
      pending.occurrences += 1;
      pending.lastDetail = incident.detail;
      return;
    }
    this.options.record(incident.type, `${incident.count} record${incident.count === 1 ? "" : "s"}: ${incident.detail}`, { count: incident.count, ...incident.fields });
    const windowTimer = setTimeout(() => this.closeWindow(incident.type), this.options.windowMs);
    windowTimer.unref?.();
    this.open.set(incident.type, { windowTimer, suppressed: 0, occurrences: 0, lastDetail: "" });
  }

  /** Records what is still counted, and forgets every window (on stop). */
  flush(): void {
    for (const type of [...this.open.keys()]) this.closeWindow(type);
  }

  private closeWindow(type: string): void {
    const pending = this.open.get(type);
    if (!pending) return;
    clearTimeout(pending.windowTimer);
    this.open.delete(type);
    if (pending.suppressed === 0) return;
    const seconds = Math.round(this.options.windowMs / 1000);
    this.options.record(type, `${pending.suppressed} more record${pending.suppressed === 1 ? "" : "s"} in ${pending.occurrences} batch${pending.occurrences === 1 ? "" : "es"} within ${seconds} s; last: ${pending.lastDetail}`, {
      count: pending.suppressed,
      occurrences: pending.occurrences,
      summary: true,
    });
  }
}
