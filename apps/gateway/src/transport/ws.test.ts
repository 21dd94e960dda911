import { FRAME_HELLO_PROTOCOL, HELLO_PROTOCOL_PREFIX, UPGRADE_HELLO_PROTOCOL } from '@livebus/protocol';
import { helloOfUpgrade, isWsPath, selectProtocol } from './ws';

describe('isWsPath', () => {
  it('accepts /ws with or without a query, as splitting at the first "?" did, and nothing else', () => {
    const urls = [
      undefined,
      '',
      '/',
      '/ws',
      '/ws?',
      '/ws?token=x',
      '/ws?a?b',
      '/ws/',
      '/ws#x',
      '/wss',
      '/WS',
      'ws',
      '//ws',
      '/ws%3F',
    ];
    for (const url of urls)
      expect({ url, ok: isWsPath(url) }).toEqual({ url, ok: (url ?? '').split('?')[0] === '/ws' });
  });
});

describe('the hello in the upgrade', () => {
  const hello = '{"type":"hello","v":1}';
  const carried = HELLO_PROTOCOL_PREFIX + Buffer.from(hello).toString('base64url');

  it('selects livebus.hello only when the hello comes with it, else the first protocol offered', () => {
    const select = (...offered: string[]) => selectProtocol(new Set(offered));
    expect(select(FRAME_HELLO_PROTOCOL, UPGRADE_HELLO_PROTOCOL, carried)).toBe(UPGRADE_HELLO_PROTOCOL);
    expect(select(FRAME_HELLO_PROTOCOL, UPGRADE_HELLO_PROTOCOL)).toBe(FRAME_HELLO_PROTOCOL);
    expect(select(FRAME_HELLO_PROTOCOL, carried)).toBe(FRAME_HELLO_PROTOCOL);
    expect(select('graphql-ws')).toBe('graphql-ws');
    expect(select()).toBe(false);
  });

  it('reads the hello from the header wherever it stands, only when livebus.hello was selected', () => {
    const header = `${FRAME_HELLO_PROTOCOL}, ${UPGRADE_HELLO_PROTOCOL}, ${carried}`;
    expect(helloOfUpgrade(UPGRADE_HELLO_PROTOCOL, header)?.toString()).toBe(hello);
    expect(helloOfUpgrade(UPGRADE_HELLO_PROTOCOL, `${carried},${UPGRADE_HELLO_PROTOCOL}`)?.toString()).toBe(hello);
    expect(helloOfUpgrade(FRAME_HELLO_PROTOCOL, header)).toBeUndefined();
    expect(helloOfUpgrade(UPGRADE_HELLO_PROTOCOL, undefined)).toBeUndefined();
  });
});

describe('helloOfUpgrade and selectProtocol read the header alike', () => {
  it('takes the first value that starts with the prefix, not a value that contains it', () => {
    const a = HELLO_PROTOCOL_PREFIX + Buffer.from('"a"').toString('base64url');
    const b = HELLO_PROTOCOL_PREFIX + Buffer.from('"b"').toString('base64url');
    const header = `x-${a}, ${UPGRADE_HELLO_PROTOCOL},${b} , ${a}`;
    expect(selectProtocol(new Set(header.split(',').map((v) => v.trim())))).toBe(UPGRADE_HELLO_PROTOCOL);
    expect(helloOfUpgrade(UPGRADE_HELLO_PROTOCOL, header)?.toString()).toBe('"b"');
  });
});
