/**
 * The PostgreSQL error codes (SQLSTATE, appendix A of the PostgreSQL manual) that bucardo
 * reacts to, by their condition names, so that no code is a bare string literal elsewhere.
 */
export const SQLSTATE = {
  // class 08: connection exception
  connection_exception: '08000',
  sqlclient_unable_to_establish_sqlconnection: '08001',
  connection_does_not_exist: '08003',
  sqlserver_rejected_establishment_of_sqlconnection: '08004',
  connection_failure: '08006',
  protocol_violation: '08P01',
  // class 0A, 23: the statement itself
  feature_not_supported: '0A000',
  unique_violation: '23505',
  // class 3F, 42: an object that is not there
  invalid_schema_name: '3F000',
  undefined_column: '42703',
  undefined_function: '42883',
  undefined_table: '42P01',
  // class 40, 55, 57: contention and interruptions
  serialization_failure: '40001',
  deadlock_detected: '40P01',
  lock_not_available: '55P03',
  query_canceled: '57014',
  admin_shutdown: '57P01',
  crash_shutdown: '57P02',
  cannot_connect_now: '57P03',
  // class 53, 58, XX: resources and the system
  insufficient_resources: '53000',
  disk_full: '53100',
  out_of_memory: '53200',
  too_many_connections: '53300',
  system_error: '58000',
  io_error: '58030',
  internal_error: 'XX000',
} as const;

export type SqlState = (typeof SQLSTATE)[keyof typeof SQLSTATE];
