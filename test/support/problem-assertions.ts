import type { ApiResponse } from './test-app';

/** No 5xx among the answers; shows their bodies when there is one. */
export function expectNoServerErrors(responses: ApiResponse[]): void {
  expect(responses.filter((r) => r.status >= 500).map((r) => [r.status, r.body])).toEqual([]);
}

/** An application/problem+json answer with this status, a coded body and, if given, this code. */
export function expectProblem(response: ApiResponse, status: number, code?: string): void {
  expect({ status: response.status, body: response.body }).toMatchObject({ status });
  expect(response.headers['content-type']).toContain('application/problem+json');
  expect(response.body).toEqual(
    expect.objectContaining({ status, code: expect.stringMatching(/^[A-Z]+\.[A-Z_]+$/) }),
  );
  if (code) expect(response.body.code).toBe(code);
}
