import { Batcher } from './batcher';

describe('Batcher', () => {
  it('writes the first item at once and the items submitted meanwhile together', async () => {
    const writes: number[][] = [];
    let release: () => void = () => undefined;
    const batcher = new Batcher<number, number>(async (items) => {
      writes.push(items);
      if (writes.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return items.map((n) => n * 10);
    });

    const first = batcher.submit(1);
    const later = [2, 3, 4].map((n) => batcher.submit(n));
    expect(writes).toEqual([[1]]);
    release();

    expect(await first).toBe(10);
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
    expect(writes).toEqual([[1], [2, 3, 4]]);
  });

  it('rejects every item of a failed write, and the next write goes on', async () => {
    let fail = true;
    const batcher = new Batcher<string, string>(async (items) => {
      if (fail) throw new Error('database away');
      return items;
    });

    await expect(batcher.submit('a')).rejects.toThrow('database away');
    fail = false;
    await expect(batcher.submit('b')).resolves.toBe('b');
    await batcher.idle();
  });
});
