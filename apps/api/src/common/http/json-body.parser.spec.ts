import { DomainError } from '../errors/domain.error';
import { parseJsonBody } from './json-body.parser';

function failure(text: string): DomainError {
  try {
    parseJsonBody(text);
  } catch (error) {
    return error as DomainError;
  }
  throw new Error(`expected ${text} to be refused`);
}

describe('parseJsonBody', () => {
  it('parses ordinary JSON, including well-formed non-ASCII text', () => {
    expect(parseJsonBody('{"name":"Zoë 🎟️","seats":["A1"]}')).toEqual({
      name: 'Zoë 🎟️',
      seats: ['A1'],
    });
    expect(parseJsonBody('')).toBeUndefined();
  });

  it('refuses malformed JSON with a 400', () => {
    expect(failure('{"a":')).toMatchObject({ status: 400, code: 'REQUEST.MALFORMED_JSON' });
  });

  it('names every field holding NUL or a lone surrogate', () => {
    const error = failure('{"name":"a\\u0000b","sections":[{"name":"\\ud800"}],"ok":"fine"}');
    expect(error).toMatchObject({ status: 400, code: 'REQUEST.VALIDATION_FAILED' });
    expect(error.extensions.errors).toEqual([
      { field: 'name', messages: ['must not contain NUL (\\u0000)'] },
      { field: 'sections[0].name', messages: ['must be well-formed Unicode (no lone surrogates)'] },
    ]);
  });

  it('refuses keys that could reach a prototype', () => {
    const error = failure('{"name":"P","__proto__":{"isAdmin":true},"a":{"constructor":{}}}');
    expect(error.extensions.errors).toEqual([
      { field: '__proto__', messages: ['is not an allowed field name'] },
      { field: 'a.constructor', messages: ['is not an allowed field name'] },
    ]);
  });

  it('refuses nesting deeper than 16 levels without recursing through all of it', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(failure(deep)).toMatchObject({ status: 400, code: 'REQUEST.VALIDATION_FAILED' });
  });
});
