import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerError } from 'smtp-server';

export interface ReceivedEmail {
  /** MAIL FROM and RCPT TO, as the envelope said. */
  from: string;
  to: string[];
  /** Header names lower-cased, folded lines joined. */
  headers: Record<string, string>;
  subject: string;
  /** The text part, transfer encoding undone, line ends as \n. */
  text: string;
  receivedAt: number;
}

/** An SMTP reply that refuses a recipient (e.g. 550 or 451). */
export interface Refusal {
  code: number;
  message: string;
}

/**
 * A real SMTP server on a loopback port (the `smtp-server` package, no TLS, no auth) that keeps
 * every message it accepts, parsed enough to check subject, text and headers. `refuseRecipient`
 * answers RCPT TO with an error instead (a full mailbox, a policy block).
 */
export class SmtpReceiver {
  readonly messages: ReceivedEmail[] = [];
  refuseRecipient: (address: string) => Refusal | null = () => null;
  /** Every RCPT TO it refused, with the code. */
  readonly refused: { to: string; code: number }[] = [];

  private readonly server: SMTPServer;
  private port = 0;

  private constructor() {
    this.server = new SMTPServer({
      authOptional: true,
      // Plain SMTP on loopback: nodemailer would otherwise try STARTTLS with a self-signed cert.
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo: (address, _session, callback) => {
        const refusal = this.refuseRecipient(address.address);
        if (!refusal) return callback();
        this.refused.push({ to: address.address, code: refusal.code });
        const error: SMTPServerError = new Error(refusal.message);
        error.responseCode = refusal.code;
        callback(error);
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          this.messages.push(
            parse(
              Buffer.concat(chunks).toString('utf8'),
              session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              session.envelope.rcptTo.map((r) => r.address),
            ),
          );
          callback();
        });
      },
    });
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<SmtpReceiver> {
    const receiver = new SmtpReceiver();
    await new Promise<void>((resolve, reject) => {
      receiver.server.once('error', reject);
      receiver.server.listen(0, '127.0.0.1', () => resolve());
    });
    receiver.port = (receiver.server.server.address() as AddressInfo).port;
    return receiver;
  }

  /** SMTP sessions open right now (a client's pooled connections stay open between messages). */
  get openConnections(): number {
    return this.server.connections.size;
  }

  /** Messages sent to `address`. */
  to(address: string): ReceivedEmail[] {
    return this.messages.filter((m) => m.to.includes(address));
  }

  /** Waits until `predicate` holds for the messages so far; answers them. */
  async waitFor(
    predicate: (messages: ReceivedEmail[]) => boolean,
    timeoutMs = 15_000,
  ): Promise<ReceivedEmail[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.messages)) {
      if (Date.now() > deadline) {
        throw new Error(
          `emails not received in ${timeoutMs} ms; got ${JSON.stringify(
            this.messages.map((m) => [m.to, m.subject]),
          )}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.messages;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Just enough RFC 5322/MIME for single-part text messages, which is what the API sends. */
function parse(raw: string, from: string, to: string[]): ReceivedEmail {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (/^multipart\//i.test(headers['content-type'] ?? '')) {
    throw new Error(`multipart message; this receiver parses single-part text only:\n${raw}`);
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  const text =
    encoding === 'quoted-printable'
      ? Buffer.from(
          body
            .replace(/=\r\n/g, '')
            .replace(/=([0-9A-F]{2})/gi, (_, hex: string) =>
              String.fromCharCode(parseInt(hex, 16)),
            ),
          'latin1',
        ).toString('utf8')
      : encoding === 'base64'
        ? Buffer.from(body, 'base64').toString('utf8')
        : body;
  return {
    from,
    to,
    headers,
    subject: headers.subject ?? '',
    text: text.replace(/\r\n/g, '\n'),
    receivedAt: Date.now(),
  };
}
