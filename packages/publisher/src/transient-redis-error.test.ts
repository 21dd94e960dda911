import { ReplyError } from 'ioredis';
import { isTransientRedisError } from './transient-redis-error';

// The errors as ioredis makes them (ReplyError for a server reply; the Cluster's
// own Error when it gives up after `maxRedirections`, built the way it builds it).
const reply = (text: string) => new ReplyError(text);
const tooManyRedirections = (last: Error) => new Error(`Too many Cluster redirections. Last error: ${last}`);

describe('isTransientRedisError', () => {
  it.each([
    ['CLUSTERDOWN', reply('CLUSTERDOWN The cluster is down')],
    ['CLUSTERDOWN, no reachable master', reply('CLUSTERDOWN Hash slot not served')],
    ['TRYAGAIN', reply('TRYAGAIN Multiple keys request during rehashing of slot')],
    ['MOVED', reply('MOVED 3999 127.0.0.1:6381')],
    ['ASK', reply('ASK 3999 127.0.0.1:6381')],
    ['MASTERDOWN', reply('MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no')],
    ['READONLY (a demoted master)', reply("READONLY You can't write against a read only replica.")],
    ['LOADING', reply('LOADING Redis is loading the dataset in memory')],
    ['NOREPLICAS', reply('NOREPLICAS Not enough good replicas to write.')],
    ['too many redirections after CLUSTERDOWN', tooManyRedirections(reply('CLUSTERDOWN The cluster is down'))],
    ['too many redirections after a closed connection', tooManyRedirections(new Error('Connection is closed.'))],
    ['too many redirections, last error unnamed', new Error('Too many Cluster redirections. Last error: ReplyError')],
    ['a closed connection', new Error('Connection is closed.')],
    ['a command aborted with its connection', new Error('Command aborted due to connection close')],
    ['no startup node', new Error('None of startup nodes is available')],
    [
      'an auto-pipeline whose keys a new slot map puts on two nodes (a resharding)',
      new Error('All keys in the pipeline should belong to the same slots allocation group'),
    ],
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    [
      'BUSY (a script running past busy-reply-threshold)',
      reply('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.'),
    ],
    ['too many redirections after BUSY', tooManyRedirections(reply('BUSY Redis is busy running a script.'))],
    [
      'WRONGPASS (a password Redis no longer takes: a rotation under way)',
      reply('WRONGPASS invalid username-password pair or user is disabled.'),
    ],
    ['NOAUTH (Redis asks for a password the client has not given)', reply('NOAUTH Authentication required.')],
  ])('%s is transient', (_name, error) => {
    expect(isTransientRedisError(error)).toBe(true);
  });

  it.each([
    ['WRONGTYPE', reply('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['a script error', reply('ERR user_function:12: Script attempted to access nonexistent global variable')],
    ['OOM', reply("OOM command not allowed when used memory > 'maxmemory'.")],
    ['NOSCRIPT', reply('NOSCRIPT No matching script. Please use EVAL.')],
    ['too many redirections ending on a refusal', tooManyRedirections(reply('WRONGTYPE Operation against a key'))],
    ['BUSYKEY', reply('BUSYKEY Target key name already exists.')],
    ['BUSYGROUP', reply('BUSYGROUP Consumer Group name already exists')],
    [
      'NOPERM (a user whose ACL denies the command)',
      reply("NOPERM User pub has no permissions to run the 'evalsha' command"),
    ],
    ['not an Error', 'CLUSTERDOWN'],
    ['a TypeError', new TypeError('Cannot read properties of undefined')],
    [
      'one command with keys of two slots',
      new Error('All the keys in a pipeline command should belong to the same slot'),
    ],
  ])('%s is a refusal', (_name, error) => {
    expect(isTransientRedisError(error)).toBe(false);
  });
});
