import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * The largest request body accepted: a license import (5 MB of CSV or JSON, modules/licenses/import.ts)
 * JSON-escaped in a GraphQL request, with room to spare. Client operations are a few hundred bytes.
 */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

const tooLarge = () => new GraphQLError('Request body too large', { extensions: { http: { status: 413 }, code: 'REQUEST_ENTITY_TOO_LARGE' } });
const badLength = () => new GraphQLError('Content-Length header is invalid', { extensions: { http: { status: 400 }, code: 'BAD_REQUEST' } });

/**
 * The request body limit, in place of yoga's (its `maxRequestBodySize` is turned off). Yoga pipes every
 * body through a counting stream, whose setup and teardown (Transform streams, listeners, and at the
 * end an AbortController aborted, so a DOMException with its stack) cost as much as the rest of a no-op
 * request: 0.21 against 0.11 ms of server CPU per no-op, measured on the AMD machine kind (README,
 * Benchmarks). A body with a Content-Length needs no counting: the length is checked against the
 * limit, and Node's HTTP parser hands over exactly that many bytes. Only a body without one (chunked)
 * is counted as it streams, and cut off past the limit.
 */
export function requestBodyLimit(limit = MAX_REQUEST_BYTES): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const length = request.headers.get('content-length');
      if (length !== null) {
        if (!/^\d+$/.test(length)) throw badLength();
        if (Number(length) > limit) throw tooLarge();
        return;
      }
      if (!requestParser || !request.body) return;
      const parse = requestParser;
      setRequestParser((req) => parse(counted(req, limit, fetchAPI)));
    },
  };
}

type FetchAPI = Parameters<NonNullable<Plugin['onRequestParse']>>[0]['fetchAPI'];

function counted(request: Request, limit: number, fetchAPI: FetchAPI): Request {
  const body = request.body;
  if (!body) return request;
  // A native stream needs the native TransformStream; whatwg-node's own streams need its ponyfill.
  const Transform = body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  let read = 0;
  const limited = body.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        read += chunk.byteLength;
        if (read > limit) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body: limited,
    // @ts-expect-error a streamed body needs duplex 'half' (not in the DOM types yet)
    duplex: 'half',
  });
}
