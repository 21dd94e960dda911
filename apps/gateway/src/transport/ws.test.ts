import { isWsPath } from './ws';

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
