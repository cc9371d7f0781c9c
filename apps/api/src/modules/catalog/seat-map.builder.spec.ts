import { buildSeatMap, rowName } from './seat-map.builder';

describe('rowName', () => {
  it.each([
    [0, 'A'],
    [25, 'Z'],
    [26, 'AA'],
    [27, 'AB'],
    [51, 'AZ'],
    [52, 'BA'],
    [701, 'ZZ'],
    [702, 'AAA'],
  ])('row %i is %s', (index, name) => {
    expect(rowName(index)).toBe(name);
  });
});

describe('buildSeatMap', () => {
  it('letters rows across sections in order and numbers seats from 1', () => {
    const seats = buildSeatMap([
      { name: 'Stalls', rows: 3, seatsPerRow: 2, priceCents: 5000 },
      { name: 'Balcony', rows: 2, seatsPerRow: 3, priceCents: 2500 },
    ]);
    expect(seats.map((s) => s.label)).toEqual([
      'A1',
      'A2',
      'B1',
      'B2',
      'C1',
      'C2',
      'D1',
      'D2',
      'D3',
      'E1',
      'E2',
      'E3',
    ]);
    expect(seats[6]).toEqual({
      label: 'D1',
      section: 'Balcony',
      row: 'D',
      number: 1,
      position: 6,
      priceCents: 2500,
    });
    expect(new Set(seats.map((s) => s.label)).size).toBe(seats.length);
  });

  it('continues past Z with AA, AB', () => {
    const seats = buildSeatMap([{ name: 'Floor', rows: 28, seatsPerRow: 1, priceCents: 100 }]);
    expect(seats.slice(25).map((s) => s.label)).toEqual(['Z1', 'AA1', 'AB1']);
  });
});
