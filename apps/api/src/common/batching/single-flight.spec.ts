import { SingleFlight } from './single-flight';

describe('SingleFlight', () => {
  it('shares one running call among the callers of a key, and runs again once it settled', async () => {
    const flight = new SingleFlight<number>();
    let calls = 0;
    let finish: (value: number) => void = () => undefined;
    const call = () => {
      calls += 1;
      return new Promise<number>((resolve) => (finish = resolve));
    };
    const together = [flight.run('a', call), flight.run('a', call), flight.run('a', call)];
    expect(calls).toBe(1);
    finish(7);
    await expect(Promise.all(together)).resolves.toEqual([7, 7, 7]);

    const again = flight.run('a', call);
    expect(calls).toBe(2);
    finish(8);
    await expect(again).resolves.toBe(8);
  });

  it('keeps keys apart and passes an error to every caller of that call, then forgets it', async () => {
    const flight = new SingleFlight<string>();
    const failing = () => Promise.reject(new Error('down'));
    const [first, second] = [flight.run('x', failing), flight.run('x', failing)];
    await expect(first).rejects.toThrow('down');
    await expect(second).rejects.toThrow('down');
    await expect(flight.run('y', () => Promise.resolve('y'))).resolves.toBe('y');
    await expect(flight.run('x', () => Promise.resolve('ok'))).resolves.toBe('ok');
  });
});
