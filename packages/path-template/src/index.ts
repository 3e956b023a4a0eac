export { templatePath, PLACEHOLDER } from './normalise.js';
export { parsePathTemplateRules, PathTemplateRuleError, type PathTemplateRule } from './rules.js';
export {
  PathTemplater,
  OTHER_TEMPLATE,
  DEFAULT_CACHE_SIZE,
  DEFAULT_MAX_TEMPLATES_PER_ROUTE,
  MAX_CACHED_PATH_LENGTH,
  type PathTemplaterOptions,
} from './path-templater.js';
