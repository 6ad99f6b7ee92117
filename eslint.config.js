// Lint config (flat), type-aware: the rules that need the TypeScript program (floating and misused
// promises, exhaustive switches, awaiting non-promises) are the ones that find real bugs in a daemon.
// `npm run lint`; .ci/run runs it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'packaging/**', 'bench/results/**', 'test/corpus/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['scripts/*.mjs', 'bench/*.mjs', 'eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // node:test's test()/describe()/it() (t.test() too) return promises the runner tracks itself: a subtest still
      // running when its parent ends fails as cancelled.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // An async method that implements a Promise-returning interface need not await: a throw still becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // Mail handling matches NUL and other control characters on purpose (header and body sanitising, smuggling checks).
      'no-control-regex': 'off',
      // Tests match column-aligned CLI output, where literal spaces read better than {n}.
      'no-regex-spaces': 'off',
      // A closure declared before the value it captures (a fake that refers to itself) needs `let x!: T`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Passing a caught value on to reject() re-raises whatever was thrown; it need not be wrapped.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    // Plain JavaScript (build script, one benchmark): no types to check `any` against, and Node's globals.
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(['process', 'console', 'Buffer', 'URL', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'].map((name) => [name, 'readonly'])),
    },
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },
);
