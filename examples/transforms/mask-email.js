// A transform (SPEC section 6): masks e-mail addresses on their way to a reporting
// database, so analysts see "j***@example.com" and the domain, never the address.
//
// Named by a topology, relative to the topology file:
//
//   targets:
//     reporting:
//       transform: ../transforms/mask-email.js
//
// transform(row, ctx) gets one row of the source table, each sent column as its
// PostgreSQL text form (or null), and ctx = { sync, table, database }. It returns the row
// to write there (the same key), or null to send nothing for that row. It runs in the
// runner, once per changed row, so it must be quick and must not throw for data it does
// not expect: a throw fails the run, which then changes nothing until the module is fixed.

/** "jane.doe@example.com" -> "j***@example.com"; anything without an @ -> "***". */
export function maskEmail(email) {
  const at = email.lastIndexOf('@');
  return at > 0 ? `${email[0]}***${email.slice(at)}` : '***';
}

// biome-ignore lint/correctness/noUnusedFunctionParameters: the signature SPEC section 6 documents
export function transform(row, ctx) {
  if (row.email === null || row.email === undefined) return row;
  return { ...row, email: maskEmail(row.email) };
}
