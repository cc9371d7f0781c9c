export class SectionDto {
  name: string;
  rows: number;
  seatsPerRow: number;
  priceCents: number;
}
