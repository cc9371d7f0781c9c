import { unitSectionIndex } from './seat-map';
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

  it('numbers general-admission units within their section, rows lettered around them', () => {
    const seats = buildSeatMap([
      { name: 'Stalls', rows: 1, seatsPerRow: 2, priceCents: 100 },
      { name: 'Floor', kind: 'ga', capacity: 3, priceCents: 40 },
      { name: 'Balcony', rows: 1, seatsPerRow: 1, priceCents: 60 },
      { name: 'Pit', kind: 'ga', capacity: 1, priceCents: 20 },
    ]);
    expect(seats.map((s) => s.label)).toEqual([
      'A1',
      'A2',
      'GA1-1',
      'GA1-2',
      'GA1-3',
      'B1',
      'GA2-1',
    ]);
    expect(seats[3]).toEqual({
      label: 'GA1-2',
      section: 'Floor',
      row: null,
      number: 2,
      position: 3,
      priceCents: 40,
    });
  });

  it('tells a unit label from a seat label', () => {
    expect(unitSectionIndex('GA12-400')).toBe(12);
    expect(unitSectionIndex('A12')).toBeNull();
    expect(unitSectionIndex('GA1')).toBeNull();
  });
});
