// The s3rver package ships no types; this covers the part scripts/services/s3.ts uses.
declare module "s3rver" {
  import type { IncomingMessage, ServerResponse } from "node:http";

  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    serviceEndpoint?: string;
    configureBuckets?: Array<{ name: string; configs?: Array<string | Buffer> }>;
  }

  class S3rver {
    constructor(options?: S3rverOptions);
    /** The Koa request handler, for mounting in one's own http.Server. */
    callback(): (request: IncomingMessage, response: ServerResponse) => void;
    /** Creates the buckets given in options.configureBuckets. */
    configureBuckets(): Promise<void>;
  }

  export = S3rver;
}
