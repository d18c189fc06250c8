// s3rver ships no types; the test helper describes the little of it that it uses.
declare module 's3rver' {
  const S3rver: new (options: Record<string, unknown>) => unknown;
  export default S3rver;
}
