import { join } from 'node:path';
import { describeBinFiles } from '@livebus/test-support';

// Only the command's files start with `#!/usr/bin/env node` (and are executable); the library's
// files, which apps import and bundle, carry none.
describeBinFiles(join(__dirname, '..'));
