// The preset's test environment: Node's, plus one thing. When a test (or a hook) fails, the
// output of the child processes it ran (gateways, workers, CLIs started through
// @livebus/test-support's startChild) is added to the failure, so a child's crash or stack
// trace shows up in the test's own report instead of being lost.
const { TestEnvironment } = require('jest-environment-node');

const registryKey = Symbol.for('livebus.test-support.children');

class LivebusEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.since = Date.now();
  }

  reports() {
    const registry = this.global[registryKey];
    if (!registry) return [];
    const reports = [];
    for (const child of registry.children) {
      if (child.exitedAt !== undefined && child.exitedAt < this.since) {
        registry.children.delete(child);
        continue;
      }
      reports.push(child.report());
    }
    return reports;
  }

  async handleTestEvent(event) {
    if (event.name === 'test_start') this.since = Date.now();
    if (event.name === 'test_done' && event.test.errors.length > 0) {
      const reports = this.reports();
      if (reports.length > 0) event.test.errors.push(new ChildOutput(reports));
    }
    if (event.name === 'hook_failure' && event.error instanceof Object) {
      const reports = this.reports();
      if (reports.length > 0 && typeof event.error.message === 'string') {
        event.error.message += `\n${new ChildOutput(reports).message}`;
      }
    }
  }
}

/** An extra failure entry holding the children's output (stack-less: the output is the point). */
class ChildOutput extends Error {
  constructor(reports) {
    super(`output of the child processes this test ran:\n${reports.join('\n')}`);
    this.name = 'ChildOutput';
    this.stack = `${this.name}: ${this.message}`;
  }
}

module.exports = LivebusEnvironment;
