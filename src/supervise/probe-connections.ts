/**
 * The process's raw probe connections (sys/uringprobe.ts, sys/tcpprobe.ts), shared by every
 * Prober and made on first use: one io_uring pair or one epoll set for all probes is what
 * keeps 1,000 probes a second cheap.
 */
import { TcpProbes, type TcpAddress, type TcpProbeClient, type TcpProbeConnection } from '../sys/tcpprobe.ts';
import { UringProbes, probeTransport } from '../sys/uringprobe.ts';

/** What both raw transports offer: connections whose callbacks a Prober gets. */
export interface ProbeConnections {
  open(address: TcpAddress, request: Buffer | undefined, client: TcpProbeClient, urgent?: boolean): TcpProbeConnection;
}

// No onError: a transport that cannot watch its set first fails every connection, whose
// Prober reports it as the attempt's error; and the callbacks given here never throw.
let sharedEpoll: TcpProbes | undefined;
/** null: io_uring cannot be had here (checked once). */
let sharedUring: UringProbes | null | undefined;
/** What 'raw' means in this process, decided once (io_uring checked, T6_PROBE_TRANSPORT read). */
let rawKind: 'uring' | 'epoll' | undefined;

/** The shared transports' options: T6_PROBE_HANDSHAKE_ACK=separate keeps the handshake's ACK apart from the request. */
const probeOptions = (): { onError: () => void; mergeHandshakeAck: boolean } => ({ onError: () => {}, mergeHandshakeAck: process.env.T6_PROBE_HANDSHAKE_ACK !== 'separate' });

/** The connections of a transport ('raw': io_uring where the kernel allows it, else epoll; decided once). */
export function connections(transport: 'raw' | 'uring' | 'epoll'): ProbeConnections {
  if (transport === 'raw') transport = rawKind ??= probeTransport();
  if (transport === 'uring') {
    if (sharedUring === undefined) sharedUring = UringProbes.tryCreate(probeOptions()) ?? null;
    if (sharedUring !== null) return sharedUring;
  }
  sharedEpoll ??= new TcpProbes(probeOptions());
  return sharedEpoll;
}
