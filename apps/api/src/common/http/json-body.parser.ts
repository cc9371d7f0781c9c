import { DomainError } from '../errors/domain.error';
import { type FieldError, RequestValidationError } from '../errors/request-validation.error';

/** Deeper than any request of this API; stops pathological nesting before it reaches validation. */
const MAX_DEPTH = 16;
const MAX_REPORTED = 20;
/** Keys that could reach an object's prototype once the body is turned into class instances. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function describePath(path: string): string {
  return path === '' ? 'body' : path;
}

/**
 * Strings PostgreSQL cannot store (NUL) or that are not well-formed UTF-16 (a lone surrogate, which
 * would be stored as U+FFFD and no longer match what the client sent) are refused up front, with
 * the path of every offending field.
 */
function inspect(value: unknown, path: string, depth: number, problems: FieldError[]): void {
  if (problems.length >= MAX_REPORTED) return;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) {
      problems.push({ field: describePath(path), messages: ['must not contain NUL (\\u0000)'] });
    } else if (!value.isWellFormed()) {
      problems.push({
        field: describePath(path),
        messages: ['must be well-formed Unicode (no lone surrogates)'],
      });
    }
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (depth >= MAX_DEPTH) {
    problems.push({
      field: describePath(path),
      messages: [`nested deeper than ${MAX_DEPTH} levels`],
    });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => inspect(item, `${path}[${index}]`, depth + 1, problems));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (!key.isWellFormed() || key.includes('\u0000')) {
      problems.push({
        field: describePath(path),
        messages: ['has a field name that is not well-formed'],
      });
      continue;
    }
    if (FORBIDDEN_KEYS.has(key)) {
      problems.push({
        field: path ? `${path}.${key}` : key,
        messages: ['is not an allowed field name'],
      });
      continue;
    }
    inspect(item, path ? `${path}.${key}` : key, depth + 1, problems);
  }
}

/** The API's only body parser: JSON, checked for what would break further down. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DomainError(
      'REQUEST.MALFORMED_JSON',
      400,
      'Malformed JSON',
      `The body is not valid JSON: ${(error as Error).message}`,
    );
  }
  const problems: FieldError[] = [];
  inspect(value, '', 0, problems);
  if (problems.length > 0) throw new RequestValidationError(problems);
  return value;
}
