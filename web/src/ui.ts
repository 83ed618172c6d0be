/** Small shared pieces of the views: outcome messages, formatting, time inputs. */
import { html, type TemplateResult } from 'lit';
import { ApiError } from './client.ts';
import { LOCALE } from './locale.ts';

export interface Outcome {
  kind: 'ok' | 'error';
  text: string;
}

/** Every action shows its outcome; an API refusal shows its `detail` and code. */
export function outcomeOf(err: unknown): Outcome {
  if (err instanceof ApiError) return { kind: 'error', text: `${err.message} (${err.code})` };
  return { kind: 'error', text: err instanceof Error ? err.message : String(err) };
}

/** Runs an action and gives its outcome: its own message when it returns one, or the refusal. */
export async function attempt(run: () => Promise<string | void>): Promise<Outcome | undefined> {
  try {
    const text = await run();
    return text ? { kind: 'ok', text } : undefined;
  } catch (err) {
    return outcomeOf(err);
  }
}

export function outcomeView(o: Outcome | undefined): TemplateResult {
  return html`<p class="outcome ${o?.kind ?? ''}" role="status" aria-live="polite">${o?.text ?? ''}</p>`;
}

export const money = (n: number) => n.toFixed(2);
export const when = (iso: string) => new Date(iso).toLocaleString(LOCALE, { dateStyle: 'medium', timeStyle: 'short' });

/** A datetime-local value (local time, minutes) for an instant. */
export function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

/** The ISO instant of a datetime-local value. */
export const fromLocal = (v: string) => new Date(v).toISOString();

export const HOUR = 3_600_000;
export const nextHour = (ahead = HOUR) => Math.ceil((Date.now() + ahead) / HOUR) * HOUR;

export function field(label: string, control: TemplateResult): TemplateResult {
  return html`<label class="field"><span>${label}</span>${control}</label>`;
}
