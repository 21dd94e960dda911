import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config';
import { fillPath, loadListenersConfig, parseListenersConfig } from './listeners-config';

const good = {
  user: [
    { name: 'notifications', collection: 'users/{uid}/notifications' },
    { name: 'jobs', collection: 'jobs', where: [['owner_id', '==', '{uid}']] },
  ],
  workflow: { document: 'jobs/{job_id}', owner_field: 'owner_id' },
};

function file(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'livebus-listeners-')), 'listeners.json');
  writeFileSync(path, content);
  return path;
}

describe('LISTENERS_FILE', () => {
  it('accepts the documented example', () => {
    expect(parseListenersConfig(good)).toEqual(good);
    expect(fillPath('users/{uid}/n', { uid: 'u1' })).toBe('users/u1/n');
  });

  it('names the bad entry', () => {
    expect(() => parseListenersConfig({ user: [good.user[0], { name: 'x', collection: 'users/{uid}' }] })).toThrow(
      /user\[1\]\.collection: must name a collection/,
    );
    expect(() => parseListenersConfig({ user: [{ name: 'n', collection: 'a/{user}/b' }] })).toThrow(
      /user\[0\]\.collection: the only placeholder allowed is \{uid\}/,
    );
    expect(() => parseListenersConfig({ user: [{ name: 'n', collection: 'c', where: [['f', '~', 1]] }] })).toThrow(
      /user\[0\]\.where\[0\]\[1\]/,
    );
    const where = (filter: unknown[]) => () =>
      parseListenersConfig({ user: [{ name: 'n', collection: 'c', where: [['ok', '==', 1], filter] }] });
    expect(where(['owner..id', '==', '{uid}'])).toThrow(
      /user\[0\]\.where\[1\]: field "owner\.\.id" is not a field path/,
    );
    expect(where(['tags[0]', '==', 'a'])).toThrow(/is not a field path/);
    expect(where(['status', 'in', 'open'])).toThrow(/user\[0\]\.where\[1\]: "in" takes an array of 1 to 30 values/);
    expect(where(['status', 'not-in', []])).toThrow(/"not-in" takes an array of 1 to 10 values/);
    expect(where(['due', '<', null])).toThrow(/null is only compared with "==" or "!="/);
    expect(where(['members', 'array-contains-any', ['{uid}', 'all']])).not.toThrow();
    expect(where(['owner.id', '==', null])).not.toThrow();
    expect(() => parseListenersConfig({ workflow: { document: 'jobs', owner_field: 'o' } })).toThrow(
      /workflow\.document/,
    );
    expect(() => parseListenersConfig({ users: [] })).toThrow(/users/);
    expect(() => parseListenersConfig({ user: [good.user[0], good.user[0]] })).toThrow(/unique/);
  });

  it('reports an unreadable or non-JSON file with its path', () => {
    expect(() => loadListenersConfig('/nonexistent/listeners.json')).toThrow(
      /cannot read listeners file \/nonexistent/,
    );
    const bad = file('{ not json');
    expect(() => loadListenersConfig(bad)).toThrow(new RegExp(`listeners file ${bad} is not JSON`));
  });

  it('the gateway refuses listeners without Firestore credentials or project, naming what is missing', () => {
    const path = file(JSON.stringify(good));
    expect(() => loadConfig({ LISTENERS_FILE: path })).toThrow(
      /FIRESTORE_EMULATOR_HOST.*GOOGLE_APPLICATION_CREDENTIALS/,
    );
    expect(() => loadConfig({ LISTENERS_FILE: path, FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' })).toThrow(
      /FIREBASE_PROJECT_ID \(or GOOGLE_CLOUD_PROJECT\)/,
    );
    const config = loadConfig({ LISTENERS_FILE: path, FIRESTORE_EMULATOR_HOST: 'h:1', GOOGLE_CLOUD_PROJECT: 'p' });
    expect(config.listeners?.user).toHaveLength(2);
    expect(config.firestoreProjectId).toBe('p');
    const broken = file(JSON.stringify({ user: [{ name: 'Bad Name', collection: 'c' }] }));
    expect(() =>
      loadConfig({ LISTENERS_FILE: broken, FIRESTORE_EMULATOR_HOST: 'h:1', GOOGLE_CLOUD_PROJECT: 'p' }),
    ).toThrow(/LISTENERS_FILE: invalid listeners file .*\n.*user\[0\]\.name/);
  });
});
