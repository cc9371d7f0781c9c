/* Moved to report.ts; kept so that imports from here still work. */
export { fmt, printJson, renderTable, type TableRow } from './report';
