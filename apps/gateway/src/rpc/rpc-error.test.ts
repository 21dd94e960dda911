import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RPC_ERROR_CODES } from '@livebus/protocol';
import { httpStatusOf } from './rpc-error';

describe('httpStatusOf', () => {
  it('gives each RPC error code the HTTP status protocol.md states for POST /rpc', () => {
    const doc = readFileSync(join(__dirname, '..', '..', '..', '..', 'docs', 'protocol.md'), 'utf8');
    const paragraph = doc.slice(doc.indexOf('Over HTTP, `POST /rpc` answers'));
    const stated = new Map<string, number>();
    for (const [, codes, status] of paragraph.matchAll(/((?:`[a-z_]+`(?: and )?)+) (\d{3})/g)) {
      for (const [, code] of (codes as string).matchAll(/`([a-z_]+)`/g)) stated.set(code as string, Number(status));
    }
    for (const code of RPC_ERROR_CODES)
      expect({ code, status: stated.get(code) }).toEqual({ code, status: httpStatusOf(code) });
  });
});
