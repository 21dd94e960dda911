import { isOriginAllowed } from './origin-policy';

describe('isOriginAllowed', () => {
  const list = ['https://app.example.com', 'https://*.example.org', 'http://localhost:3000'];

  it('allows anything without a list, and non-browser peers without an Origin', () => {
    expect(isOriginAllowed('https://evil.test', undefined)).toBe(true);
    expect(isOriginAllowed(undefined, list)).toBe(true);
  });

  it('matches exact origins, scheme and port included', () => {
    expect(isOriginAllowed('https://app.example.com', list)).toBe(true);
    expect(isOriginAllowed('https://APP.example.com', list)).toBe(true);
    expect(isOriginAllowed('http://app.example.com', list)).toBe(false);
    expect(isOriginAllowed('https://app.example.com.evil.test', list)).toBe(false);
    expect(isOriginAllowed('http://localhost:3000', list)).toBe(true);
    expect(isOriginAllowed('http://localhost:3001', list)).toBe(false);
  });

  it('matches subdomain wildcards at any depth, never the bare domain or a look-alike', () => {
    expect(isOriginAllowed('https://a.example.org', list)).toBe(true);
    expect(isOriginAllowed('https://a.b.example.org', list)).toBe(true);
    expect(isOriginAllowed('https://example.org', list)).toBe(false);
    expect(isOriginAllowed('https://evilexample.org', list)).toBe(false);
    expect(isOriginAllowed('http://a.example.org', list)).toBe(false);
    expect(isOriginAllowed('null', list)).toBe(false);
  });
});
