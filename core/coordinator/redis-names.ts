/**
 * Every key and channel the Redis coordinator uses, under one prefix: several
 * deployments (or test runs) can share one Redis without seeing each other.
 */
export class RedisNames {
  readonly dbChanged: string;
  readonly eventAppended: string;
  readonly flightDone: string;
  readonly controlQueue: string;
  readonly controlServers: string;
  readonly gateways: string;
  readonly cancelChannelPrefix: string;

  constructor(readonly prefix: string) {
    this.dbChanged = `${prefix}db-changed`;
    this.eventAppended = `${prefix}event-appended`;
    this.flightDone = `${prefix}flight-done`;
    this.controlQueue = `${prefix}control:queue`;
    this.controlServers = `${prefix}control:servers`;
    this.gateways = `${prefix}gateways`;
    this.cancelChannelPrefix = `${prefix}cancel-to:`;
  }

  /** Channel a process hears its control replies on. */
  controlReplies(processId: string): string {
    return `${this.prefix}control:replies:${processId}`;
  }
  /** A control request's reply, kept a while for a requester whose subscription blinked. */
  controlResult(requestId: string): string {
    return `${this.prefix}control:result:${requestId}`;
  }
  flightLock(key: string): string {
    return `${this.prefix}flight:${key}`;
  }
  flightResult(token: string): string {
    return `${this.prefix}flight-result:${token}`;
  }
  activity(gatewayId: string): string {
    return `${this.prefix}activity:${gatewayId}`;
  }
  lease(name: string): string {
    return `${this.prefix}lease:${name}`;
  }
  leaseEpoch(name: string): string {
    return `${this.prefix}lease-epoch:${name}`;
  }
  cancelKey(key: string): string {
    return `${this.prefix}cancel-key:${key}`;
  }
  cancelChannel(gatewayId: string): string {
    return `${this.cancelChannelPrefix}${gatewayId}`;
  }
}
