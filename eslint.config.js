// Type-aware lint: no-floating-promises catches un-awaited native calls.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['native/**', 'node_modules/**', 'target/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
