import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { createTransport, type SendMailOptions } from 'nodemailer';
import { AppConfigService } from '../../../config/app-config.service';

/** What the SMTP server said when it took a message. */
export interface SmtpAcceptance {
  /** The server's final reply, e.g. "250 OK: queued as 1234". */
  response: string;
}

type Transporter = ReturnType<typeof createTransport>;

/**
 * The SMTP connection pool behind the email channel: created once from SMTP_URL, shared by every
 * send, closed at shutdown. Without SMTP_URL there is no pool and email is off.
 */
@Injectable()
export class EmailTransport implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(EmailTransport.name);
  private readonly transporter: Transporter | null;
  /** SMTP_FROM, the From of every message. */
  readonly from: string;
  /** The domain of SMTP_FROM: Message-IDs are minted under it, as RFC 5322 recommends. */
  readonly domain: string;

  constructor(config: AppConfigService) {
    this.from = config.get('SMTP_FROM');
    this.domain = /@([^\s<>@]+)>?\s*$/.exec(this.from)?.[1] ?? 'seatlock.local';
    const url = config.get('SMTP_URL');
    this.transporter = url
      ? createTransport({
          url,
          // One pool for the process: a connection (and its TLS handshake) serves many messages.
          pool: true,
          maxConnections: 3,
          // Bounded waits, so a black-holed server fails an attempt (the worker retries it)
          // instead of holding a delivery for nodemailer's default minutes.
          connectionTimeout: 10_000,
          greetingTimeout: 10_000,
          socketTimeout: 30_000,
          dnsTimeout: 10_000,
        })
      : null;
  }

  get enabled(): boolean {
    return this.transporter !== null;
  }

  onModuleInit(): void {
    if (!this.transporter) {
      this.logger.log('SMTP_URL not set: email notifications are off');
      return;
    }
    const { host, port, secure } = this.transporter.options as {
      host?: string;
      port?: number;
      secure?: boolean;
    };
    // Host and port only: the URL may carry credentials.
    this.logger.log(
      `Email notifications on: SMTP ${secure ? 'with TLS ' : ''}to ${host}:${port ?? (secure ? 465 : 587)}`,
    );
  }

  /** Hands one message to the server; rejects with nodemailer's error (responseCode, response). */
  async send(mail: SendMailOptions): Promise<SmtpAcceptance> {
    if (!this.transporter) throw new Error('SMTP_URL not set: email notifications are off');
    const info = await this.transporter.sendMail({ from: this.from, ...mail });
    return { response: String(info.response ?? '') };
  }

  /**
   * After every module's onModuleDestroy, so the delivery worker has finished the sends in hand
   * before the pool's connections go (QUIT, then closed).
   */
  onApplicationShutdown(): void {
    this.transporter?.close();
  }
}
