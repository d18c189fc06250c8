// ESLint for the whole tree (`npm run lint`, also run first by `npm test`). Layout is prettier's
// job: eslint-config-prettier comes last and turns off every rule that could disagree with it.
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier/flat';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // ESLint does not read .gitignore: build output, run artefacts and recorded results.
    ignores: [
      'dist/',
      'coverage/',
      'data/',
      'logs/',
      '.tap/',
      '.device/',
      '.scratch/',
      'bench/.work/',
      'bench/results/',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: globals.node,
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Beyond "recommended": mistakes that compile, none of which the tree has today.
      eqeqeq: ['error', 'smart'],
      'no-self-compare': 'error',
      'no-template-curly-in-string': 'error',
      'no-unreachable-loop': 'error',
      'array-callback-return': 'error',
      'no-constructor-return': 'error',
      'no-throw-literal': 'error',
      'prefer-promise-reject-errors': 'error',
      'no-eval': 'error',
      'no-implied-eval': 'error',
      radix: 'error',
      // Matching and stripping control characters is this server's job (header values, file
      // names, binary sniffing, terminal colours): such a regex is never an accident here.
      'no-control-regex': 'off',
      // A `let` assigned after a closure that reads it was made (the callback needs the object
      // that the callback is given to) reads better than a const in its temporal dead zone.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `_name` marks a parameter an interface imposes; `{ dropped, ...rest }` omits a key.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    // A promise nobody awaits or catches takes the server down when it rejects (Node's default
    // for unhandled rejections), so the server and worker code are linted with type information
    // for that one family of rules. Tests are left out: tap awaits the subtests it is handed.
    files: ['src/**/*.ts', 'src/**/*.cts', 'workers/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: fileURLToPath(new URL('.', import.meta.url)) },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    // Plain CommonJS scripts have no other way to load a module.
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
