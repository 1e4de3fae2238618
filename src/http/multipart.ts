/**
 * Reads text files from a multipart/form-data upload (busboy): only .txt
 * and .md, each strictly UTF-8, the whole upload within the body limit.
 */
import busboy from 'busboy';
import type { Request } from 'express';
import { HttpError } from './errors.ts';

/** One uploaded text file. */
export interface UploadedText {
  filename: string;
  text: string;
}

const TEXT_FILE = /\.(txt|md|markdown)$/i;
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Collects the uploaded files and plain fields of a multipart request. */
export function readTextUpload(req: Request, options: { limitBytes: number; maxFiles: number }): Promise<{ files: UploadedText[]; fields: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: options.limitBytes, files: options.maxFiles, fields: 20 } });
    } catch (e) {
      reject(new HttpError(400, 'bad_request', `malformed multipart request: ${(e as Error).message}`));
      return;
    }
    const files: UploadedText[] = [];
    const fields: Record<string, string> = {};
    let failed: HttpError | undefined;
    let total = 0;
    const fail = (e: HttpError) => {
      failed ??= e;
    };
    bb.on('file', (_name, stream, info) => {
      const filename = info.filename ?? '';
      if (!TEXT_FILE.test(filename)) {
        fail(new HttpError(415, 'unsupported_media_type', `'${filename}': only .txt and .md files can be uploaded`, { param: 'file' }));
        stream.resume();
        return;
      }
      const parts: Buffer[] = [];
      stream.on('data', (b: Buffer) => {
        total += b.length;
        if (total > options.limitBytes) fail(new HttpError(413, 'payload_too_large', `upload exceeds the limit of ${options.limitBytes} bytes`));
        else parts.push(b);
      });
      stream.on('limit', () => fail(new HttpError(413, 'payload_too_large', `upload exceeds the limit of ${options.limitBytes} bytes`)));
      stream.on('close', () => {
        if (failed) return;
        try {
          files.push({ filename, text: decoder.decode(Buffer.concat(parts)) });
        } catch {
          fail(new HttpError(400, 'invalid_utf8', `'${filename}' is not valid UTF-8`, { param: 'file' }));
        }
      });
    });
    bb.on('field', (name, value) => {
      fields[name] = value;
    });
    bb.on('filesLimit', () => fail(new HttpError(413, 'too_many_items', `at most ${options.maxFiles} files per upload`, { param: 'file' })));
    bb.on('error', (e) => reject(new HttpError(400, 'bad_request', `malformed multipart request: ${(e as Error).message}`)));
    bb.on('close', () => (failed ? reject(failed) : resolve({ files, fields })));
    req.pipe(bb);
  });
}
