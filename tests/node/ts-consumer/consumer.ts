// A NestJS-style consumer of the DOMAIN_EVENTS queue, written against the exported declarations
// (schemas/json/typescript) only: NestJS and BullMQ are not needed to type-check it. In a Nest app
// the class would carry `@Processor('DOMAIN_EVENTS')` and extend `WorkerHost`.
//
// `tsc -p tests/node/tsconfig.json` must accept it under --strict: the switch over `type` is
// exhaustive (a new event type without a case is a compile error) and narrows `job.data` to the
// event's own envelope type.
import {
  DomainEventType,
  type DomainEvent,
  type DomainEventTypeString,
  type ImageVariationCompletedEvent,
  type ImageVariationCompletedPayload,
} from '../../../schemas/json/typescript/index.js';

/** The part of a BullMQ `Job` this processor reads. */
export interface JobLike<T> {
  id?: string;
  name: string;
  data: T;
}

function assertNever(value: never): never {
  throw new Error(`unhandled domain event: ${JSON.stringify(value)}`);
}

export class DomainEventsProcessor {
  readonly published: string[] = [];
  readonly seen = new Set<string>();

  async process(job: JobLike<DomainEvent>): Promise<string> {
    const event = job.data;
    // Duplicates share the idempotency key.
    if (this.seen.has(event.idempotencyKey)) {
      return 'duplicate';
    }
    this.seen.add(event.idempotencyKey);
    const kind: DomainEventTypeString = event.type;
    switch (event.type) {
      case DomainEventType.IMAGE_VARIATION_COMPLETED:
        return this.onVariationCompleted(event);
      case DomainEventType.IMAGE_VARIATION_PARTIAL:
        this.published.push(...event.payload.publicUrls);
        return `${kind}: ${event.payload.failedFamilies.length} failed`;
      case DomainEventType.IMAGE_FAMILY_COMPLETED:
        this.published.push(event.payload.publicUrl);
        return kind;
      case DomainEventType.IMAGE_VARIATION_QUEUED: {
        const priority: number | undefined = event.payload.priority;
        return `${kind} priority ${priority ?? 'none'}`;
      }
      case DomainEventType.EMAIL_BOUNCED: {
        const bounce: 'hard' | 'soft' | 'complaint' = event.payload.bounceType;
        return bounce;
      }
      case DomainEventType.FUNNEL_SIGNUP:
        return event.payload.method;
      case DomainEventType.SEO_PAGE_COMPLETED:
        return event.payload.locales.join(',');
      case DomainEventType.SYSTEM_ALERT_TRIGGERED:
        return event.payload.severity;
      case DomainEventType.ANALYTICS_DAILY_AGGREGATION_COMPLETE:
      case DomainEventType.ANALYTICS_HOURLY_AGGREGATION_COMPLETE:
      case DomainEventType.EMAIL_QUEUED:
      case DomainEventType.EMAIL_SENDING:
      case DomainEventType.EMAIL_SENT:
      case DomainEventType.EMAIL_FAILED:
      case DomainEventType.FUNNEL_VISIT:
      case DomainEventType.FUNNEL_PROFILE_COMPLETE:
      case DomainEventType.FUNNEL_FIRST_CONTENT:
      case DomainEventType.FUNNEL_SUBSCRIBE:
      case DomainEventType.FUNNEL_PURCHASE:
      case DomainEventType.FUNNEL_REPEAT_PURCHASE:
      case DomainEventType.IMAGE_VARIATION_STARTED:
      case DomainEventType.IMAGE_VARIATION_FAILED:
      case DomainEventType.SEO_PAGE_QUEUED:
      case DomainEventType.SEO_TEXT_GENERATED:
      case DomainEventType.SEO_IMAGES_COMPLETED:
      case DomainEventType.SEO_CONTENT_VALIDATED:
      case DomainEventType.SEO_PAGE_FAILED:
      case DomainEventType.SYSTEM_SERVICE_HEALTHY:
      case DomainEventType.SYSTEM_SERVICE_UNHEALTHY:
      case DomainEventType.SYSTEM_ALERT_RESOLVED:
        return `${kind} (correlation ${event.correlationId})`;
      default:
        return assertNever(event);
    }
  }

  private onVariationCompleted(event: ImageVariationCompletedEvent): string {
    const payload: ImageVariationCompletedPayload = event.payload;
    const urls: string[] = payload.publicUrls;
    this.published.push(...urls);
    const version: 1 = event.version;
    const causation: string | null | undefined = event.causationId;
    return `${payload.variationName} v${version}: ${urls.length} images (caused by ${causation ?? 'nothing'})`;
  }
}

/** A job as BullMQ would hand it over: the envelope as `data`, the type string as `name`. */
export const exampleJob: JobLike<ImageVariationCompletedEvent> = {
  id: 'ik-image_complete%3Avar-123',
  name: 'image:variation_completed',
  data: {
    eventId: '0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33',
    type: DomainEventType.IMAGE_VARIATION_COMPLETED,
    version: 1,
    occurredAt: '2026-11-26T17:04:05.123Z',
    source: 'image-generator',
    correlationId: 'var-123',
    causationId: null,
    idempotencyKey: 'image_complete:var-123',
    payload: {
      variationId: 'var-123',
      variationName: 'Autumn',
      familiesCompleted: 9,
      totalGenerationTimeMs: 81234,
      publicUrls: ['https://cdn.example/a.png'],
    },
  },
};

export const processed: Promise<string> = new DomainEventsProcessor().process(exampleJob);
