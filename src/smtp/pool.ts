/**
 * The connection pool behind `SmtpClient`: sends wait in one queue, and each
 * connection takes the sends queued for it while it runs, so it can pipeline
 * them (the end of message N with message N+1's envelope). A queue larger
 * than one connection's fair share opens more, up to `maxConnections`.
 *
 * Guarantees: at most `maxConnections` connections open at once, counting
 * those still saying QUIT; an idle connection is watched and retired when the
 * server speaks or hangs up, or after `idleTimeoutMs`; a send that failed
 * only because its connection went away before its data was written goes to
 * a new connection, once; `close()` serves the sends already queued, then
 * waits until every connection is closed.
 *
 * @module
 */

import { abortErrorFrom } from "./deadline.ts";
import type { SessionOptions } from "./handshake.ts";
import type { PoolOptions } from "./options.ts";
import { SmtpSession } from "./session.ts";
import type { QueuedSend, SendSettlement } from "./transaction_flight.ts";
import type { Transaction, TransactionOutcome } from "./transaction_plan.ts";
import type { StepOptions } from "./types.ts";

/** What a send reports besides its outcome. */
export interface PoolSendReport {
  /** Whether the last server the send reached advertised DSN. */
  dsnSupported: boolean;
}

/** One send waiting in, or served by, the pool. */
class Job implements QueuedSend {
  readonly transaction: Transaction;
  readonly step: StepOptions;
  readonly report: PoolSendReport;
  readonly done: Promise<TransactionOutcome>;
  /** Where the send is: waiting, reserved for a connection being opened, taken, or over. */
  state: "queued" | "opening" | "taken" | "done" = "queued";
  /** Connections the send went to. */
  attempts = 0;
  /** Only connections opened from this serial number on may take it (after a failure). */
  minSerial = 0;
  /** Only a lock-step connection may take it (a server refused our pipelining). */
  lockStep = false;
  session: SmtpSession | undefined;
  #resolve!: (outcome: TransactionOutcome) => void;
  #reject!: (error: unknown) => void;
  #onSettle: (job: Job, settlement: SendSettlement) => void;

  constructor(
    transaction: Transaction,
    step: StepOptions,
    report: PoolSendReport,
    onSettle: (job: Job, settlement: SendSettlement) => void,
  ) {
    this.transaction = transaction;
    this.step = step;
    this.report = report;
    this.#onSettle = onSettle;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  settle(settlement: SendSettlement): void {
    if (this.state === "done") return;
    this.#onSettle(this, settlement);
  }

  end(settlement: SendSettlement): void {
    if (this.state === "done") return;
    this.state = "done";
    this.session = undefined;
    if (settlement.ok) this.#resolve(settlement.outcome);
    else this.#reject(settlement.error);
  }
}

interface IdleSession {
  session: SmtpSession;
  serial: number;
  timer: ReturnType<typeof setTimeout>;
}

/** A pool of SMTP connections to one server. */
export class ConnectionPool {
  #options: SessionOptions;
  #limits: Required<PoolOptions>;
  #queue: Job[] = [];
  #idle: IdleSession[] = [];
  #running = new Map<SmtpSession, number>();
  /** Connections open or opening, and those still closing: what `maxConnections` bounds. */
  #open = 0;
  #opening = 0;
  #serial = 0;
  /** The server refused our pipelining once: later connections send in lock-step. */
  #lockStep = false;
  #jobs = new Set<Job>();
  /** Sends taken by a connection and not settled yet: in all, and per connection. */
  #taken = 0;
  #inFlight = new Map<SmtpSession, number>();
  #retiring = new Set<Promise<void>>();
  #serving = new Set<Promise<void>>();
  #closed = false;

  /** A pool for the server in `options`, within `limits`. */
  constructor(options: SessionOptions, limits: Required<PoolOptions>) {
    this.#options = options;
    this.#limits = limits;
  }

  /**
   * Queues `transaction`; resolves with its outcome or rejects with an
   * `SmtpError` or an `AbortError`. `report` learns what the server offered.
   */
  send(
    transaction: Transaction,
    step: StepOptions,
    report: PoolSendReport,
  ): Promise<TransactionOutcome> {
    const job = new Job(transaction, step, report, (j, s) => this.#settle(j, s));
    this.#jobs.add(job);
    const forget = () => this.#jobs.delete(job);
    job.done.then(forget, forget);
    const signal = step.signal;
    if (signal) {
      const onAbort = () => {
        // Only a send still waiting is the pool's to cancel; the others, their connection's.
        if (job.state !== "queued") return;
        this.#queue = this.#queue.filter((queued) => queued !== job);
        job.end({ ok: false, error: abortErrorFrom(signal), retry: false });
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        const unwatch = () => signal.removeEventListener("abort", onAbort);
        job.done.then(unwatch, unwatch);
      }
    }
    if (job.state === "queued") {
      this.#queue.push(job);
      this.#pump();
    }
    return job.done;
  }

  /** Serves the sends already queued, then closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#jobs.size > 0 || this.#serving.size > 0) {
      await Promise.allSettled([...[...this.#jobs].map((job) => job.done), ...this.#serving]);
    }
    for (const { session, timer } of this.#idle.splice(0)) {
      clearTimeout(timer);
      this.#retire(session);
    }
    // Resolves only once every connection, those of finished sends included, is closed.
    while (this.#retiring.size > 0) await Promise.allSettled([...this.#retiring]);
  }

  /** Starts idle connections and opens new ones for what is queued. */
  #pump(): void {
    while (this.#queue.length > 0) {
      const job = this.#queue[0];
      const idle = this.#takeIdle(job);
      if (idle) {
        const before = this.#queue.length;
        this.#serve(idle.session, idle.serial);
        if (this.#queue.length < before) continue;
        break;
      }
      // A running connection with nothing in flight takes the next send itself.
      if (this.#queue.length <= this.#spareRunning()) break;
      if (this.#open < this.#limits.maxConnections) {
        this.#queue.shift();
        this.#openFor(job);
        continue;
      }
      if (this.#idle.length > 0) {
        // Idle connections this send may not use hold the slots: make room.
        const { session, timer } = this.#idle.shift()!;
        clearTimeout(timer);
        this.#retire(session); // its slot frees once it is closed; then this runs again
      }
      break;
    }
    // Running connections take more at their next chance to write.
    for (const session of this.#running.keys()) session.wake();
  }

  /** Running connections with no send in flight that could still take one. */
  #spareRunning(): number {
    let spare = 0;
    for (const [session, serial] of this.#running) {
      if ((this.#inFlight.get(session) ?? 0) > 0 || !session.reusable) continue;
      if (session.transactions >= this.#limits.maxMessagesPerConnection) continue;
      if (this.#queue.some((job) => this.#fits(job, session, serial))) spare++;
    }
    return spare;
  }

  /** An idle connection `job` may use, taken out of the idle list. */
  #takeIdle(job: Job): IdleSession | undefined {
    while (true) {
      const index = this.#idle.findLastIndex((idle) => this.#fits(job, idle.session, idle.serial));
      if (index < 0) return undefined;
      const [idle] = this.#idle.splice(index, 1);
      clearTimeout(idle.timer);
      idle.session.unpark();
      if (idle.session.reusable) return idle;
      this.#retire(idle.session);
    }
  }

  #fits(job: Job, session: SmtpSession, serial: number): boolean {
    return serial >= job.minSerial && (!job.lockStep || !session.pipelining);
  }

  async #openFor(job: Job): Promise<void> {
    job.state = "opening";
    this.#open++;
    this.#opening++;
    const serial = ++this.#serial;
    let session: SmtpSession;
    try {
      session = await SmtpSession.open(this.#options, job.step, { pipelining: !this.#lockStep });
    } catch (error) {
      this.#opening--;
      this.#open--;
      job.end({ ok: false, error, retry: false });
      this.#pump();
      return;
    }
    this.#opening--;
    this.#serve(session, serial, job);
  }

  /** Runs `session` on the queue (and `first`) until it has nothing left for it. */
  #serve(session: SmtpSession, serial: number, first?: Job): void {
    const serving = this.#run(session, serial, first);
    this.#serving.add(serving);
    serving.finally(() => this.#serving.delete(serving));
  }

  async #run(session: SmtpSession, serial: number, first?: Job): Promise<void> {
    this.#running.set(session, serial);
    let reserved = first;
    await session.run({
      take: () => {
        const job = reserved ?? this.#take(session, serial);
        reserved = undefined;
        if (!job) return undefined;
        job.state = "taken";
        job.attempts++;
        job.session = session;
        this.#taken++;
        this.#inFlight.set(session, (this.#inFlight.get(session) ?? 0) + 1);
        job.report.dsnSupported = session.capabilities.has("DSN");
        return job;
      },
    });
    this.#running.delete(session);
    if (session.lockStepWanted) this.#lockStep = true;
    this.#release(session, serial);
    this.#pump();
  }

  /** The next queued send for `session`, within its fair share of the queue. */
  #take(session: SmtpSession, serial: number): Job | undefined {
    if (session.transactions >= this.#limits.maxMessagesPerConnection) return undefined;
    const inFlight = this.#inFlight.get(session) ?? 0;
    const total = this.#queue.length + this.#taken;
    const connections = Math.max(1, this.#running.size + this.#opening);
    const share = Math.max(1, Math.ceil(total / connections));
    if (inFlight >= share) return undefined;
    const index = this.#queue.findIndex((job) => this.#fits(job, session, serial));
    if (index < 0) return undefined;
    return this.#queue.splice(index, 1)[0];
  }

  #settle(job: Job, settlement: SendSettlement): void {
    if (job.state === "taken" && job.session) {
      this.#taken--;
      const left = (this.#inFlight.get(job.session) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(job.session, left);
      else this.#inFlight.delete(job.session);
    }
    const retry = !settlement.ok && settlement.retry && job.attempts < 2 &&
      !job.step.signal?.aborted;
    if (!retry) {
      job.end(settlement);
      return;
    }
    // Nothing was delivered: once more, on a connection opened from now on.
    job.state = "queued";
    job.session = undefined;
    job.minSerial = this.#serial + 1;
    if (!settlement.ok && settlement.lockStep) {
      job.lockStep = true;
      this.#lockStep = true;
    }
    this.#queue.unshift(job);
    queueMicrotask(() => this.#pump());
  }

  #release(session: SmtpSession, serial: number): void {
    // While closing, a connection still serves the sends already queued for one.
    const keep = session.reusable &&
      session.transactions < this.#limits.maxMessagesPerConnection &&
      (!this.#closed || this.#queue.length > 0);
    if (!keep) {
      this.#retire(session);
      return;
    }
    const timer = setTimeout(() => {
      this.#idle = this.#idle.filter((entry) => entry.session !== session);
      this.#retire(session);
    }, this.#limits.idleTimeoutMs);
    session.park();
    this.#idle.push({ session, serial, timer });
  }

  /**
   * Says QUIT and closes; the slot frees only once the connection is gone,
   * so `maxConnections` holds even while a server is slow to answer QUIT.
   */
  #retire(session: SmtpSession): void {
    const done = session.quit().finally(() => {
      this.#retiring.delete(done);
      this.#open--;
      this.#pump();
    });
    this.#retiring.add(done);
  }
}
