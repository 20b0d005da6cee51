import { readFile } from 'node:fs/promises';
import * as path from 'node:path';

/** The parts of a CloudFormation template the local runtime reads. */
export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
  readonly Parameters?: Record<string, { readonly Type?: string; readonly Default?: unknown }>;
  readonly Conditions?: Record<string, unknown>;
  readonly Mappings?: Record<string, Record<string, Record<string, unknown>>>;
  readonly Outputs?: Record<string, { readonly Value: unknown; readonly Export?: unknown }>;
}

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DependsOn?: string | readonly string[];
  readonly Metadata?: Record<string, unknown>;
  readonly Condition?: string;
}

export interface LoadedTemplate {
  readonly template: CfnTemplate;
  /** Absolute path of the template file. */
  readonly file: string;
  /** Directory asset paths (`aws:asset:path` metadata) are relative to: the cdk.out directory. */
  readonly assetRoot: string;
  /** Stack name derived from the file name (`<Stack>.template.json`). */
  readonly stackName: string;
}

export class TemplateError extends Error {
  readonly logicalId: string | undefined;
  constructor(message: string, logicalId?: string, options?: { cause?: unknown }) {
    super(logicalId ? `${logicalId}: ${message}` : message, options);
    this.name = 'TemplateError';
    this.logicalId = logicalId;
  }
}

/** Reads `cdk.out/<Stack>.template.json` (run `cdk synth` first). */
export async function loadTemplate(file: string): Promise<LoadedTemplate> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    throw new TemplateError(`cannot read template ${absolute}: run \`cdk synth\` first`, undefined, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TemplateError(`${absolute} is not JSON (YAML templates are not supported)`, undefined, {
      cause: error,
    });
  }
  if (!isRecord(parsed) || !isRecord(parsed.Resources)) {
    throw new TemplateError(`${absolute} has no Resources section`);
  }
  return {
    template: parsed as unknown as CfnTemplate,
    file: absolute,
    assetRoot: path.dirname(absolute),
    stackName: path.basename(absolute).replace(/\.template\.json$/, ''),
  };
}

/**
 * What `Ref` and `Fn::GetAtt` resolve to. Implemented by the provisioner (and by anything else that
 * creates local resources, e.g. the local EventBridge bus); values are local names, ARNs and URLs.
 */
export interface ResourceRegistry {
  /** `Ref` of a resource, or undefined when the registry does not know it. */
  ref(logicalId: string): string | undefined;
  /** `Fn::GetAtt`, or undefined when unknown. */
  getAtt(logicalId: string, attribute: string): unknown;
}

export interface RegisteredResource {
  readonly logicalId: string;
  readonly type: string;
  /** Value of `Ref`. */
  readonly ref: string;
  /** Values of `Fn::GetAtt` by attribute name (e.g. `Arn`, `StreamArn`, `QueueUrl`). */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** True when the resource has no local counterpart and the values are placeholders. */
  readonly synthetic?: boolean;
}

/** A map-backed registry that also answers reverse lookups (ARN or URL → logical id). */
export class LocalResourceRegistry implements ResourceRegistry {
  readonly #resources = new Map<string, RegisteredResource>();

  register(resource: RegisteredResource): void {
    this.#resources.set(resource.logicalId, resource);
  }

  get(logicalId: string): RegisteredResource | undefined {
    return this.#resources.get(logicalId);
  }

  ref(logicalId: string): string | undefined {
    return this.#resources.get(logicalId)?.ref;
  }

  getAtt(logicalId: string, attribute: string): unknown {
    return this.#resources.get(logicalId)?.attributes[attribute];
  }

  /** The resource whose Ref or any attribute equals `value` (an ARN, URL or name). */
  findByValue(value: string): RegisteredResource | undefined {
    for (const resource of this.#resources.values()) {
      if (resource.ref === value || Object.values(resource.attributes).includes(value)) return resource;
    }
    return undefined;
  }

  ofType(type: string): RegisteredResource[] {
    return [...this.#resources.values()].filter((r) => r.type === type);
  }

  all(): RegisteredResource[] {
    return [...this.#resources.values()];
  }
}

export interface PseudoParameters {
  readonly region: string;
  readonly accountId: string;
  readonly partition: string;
  readonly urlSuffix: string;
  readonly stackName: string;
  readonly stackId: string;
}

export function localPseudoParameters(stackName: string, region = 'us-east-1'): PseudoParameters {
  const accountId = '000000000000';
  return {
    region,
    accountId,
    partition: 'aws',
    urlSuffix: 'amazonaws.com',
    stackName,
    stackId: `arn:aws:cloudformation:${region}:${accountId}:stack/${stackName}/00000000-0000-0000-0000-000000000000`,
  };
}

export interface ResolveContext {
  readonly template: CfnTemplate;
  readonly registry: ResourceRegistry;
  readonly pseudo: PseudoParameters;
  /** Parameter values; parameters not listed use their Default. */
  readonly parameters?: Readonly<Record<string, string>>;
  /** Logical id of the resource being resolved, for error messages. */
  readonly resourceId?: string;
  /**
   * `Fn::ImportValue`: the value another stack exports under `name` (its `Outputs` with `Export.Name`), or
   * undefined when no stack exports it. @default - imports fail to resolve
   */
  readonly importValue?: (name: string) => string | undefined;
  /**
   * SSM Parameter Store (for `{{resolve:ssm:name}}` dynamic references and `AWS::SSM::Parameter::Value<...>`
   * template parameters): the value of a parameter, or undefined when there is none. @default - no parameters
   */
  readonly ssmParameter?: (name: string) => string | undefined;
}

export class UnresolvedReferenceError extends TemplateError {
  readonly target: string;
  constructor(target: string, detail: string, resourceId?: string) {
    super(
      `cannot resolve ${target}: ${detail}. Provision the referenced resource first (provision.ts lists what is ` +
        'supported) or register it in the ResourceRegistry.',
      resourceId,
    );
    this.name = 'UnresolvedReferenceError';
    this.target = target;
  }
}

const NO_VALUE = Symbol('AWS::NoValue');

/**
 * Resolves intrinsic functions and pseudo parameters in `value`. Supports Ref, Fn::GetAtt, Fn::Join,
 * Fn::Sub (both forms), Fn::Select, Fn::Split, Fn::GetAZs, Fn::If/Equals/Not/And/Or/Condition,
 * Fn::FindInMap, Fn::Base64, Fn::ToJsonString; `AWS::NoValue` removes the property.
 */
export function resolveIntrinsics(value: unknown, ctx: ResolveContext): unknown {
  const resolved = resolve(value, ctx);
  // CloudFormation resolves dynamic references after the intrinsic functions.
  return resolved === NO_VALUE ? undefined : resolveDynamicReferences(resolved, ctx);
}

const DYNAMIC_REFERENCE = /\{\{resolve:(ssm|ssm-secure|secretsmanager):([^}]*)\}\}/g;

/** Replaces `{{resolve:ssm:name}}` (or `name:version`) in strings with the parameter's value. */
export function resolveDynamicReferences(value: unknown, ctx: ResolveContext): unknown {
  if (typeof value === 'string') {
    if (!value.includes('{{resolve:')) return value;
    return value.replace(DYNAMIC_REFERENCE, (match, service: string, reference: string) => {
      if (service !== 'ssm') {
        throw new UnresolvedReferenceError(
          match,
          `${service} dynamic references are not emulated locally (only {{resolve:ssm:...}})`,
          ctx.resourceId,
        );
      }
      // `name` or `name:version`; parameter names never contain ':'.
      const name = reference.replace(/:\d+$/, '');
      const found = ctx.ssmParameter?.(name);
      if (found === undefined) {
        throw new UnresolvedReferenceError(
          match,
          `no SSM parameter ${name} (an AWS::SSM::Parameter of a stack started before this one, or one given in ssmParameters)`,
          ctx.resourceId,
        );
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((v) => resolveDynamicReferences(v, ctx));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveDynamicReferences(v, ctx);
    return out;
  }
  return value;
}

/** `resolveIntrinsics` for values that must end up a string. */
export function resolveString(value: unknown, ctx: ResolveContext): string {
  const resolved = resolveIntrinsics(value, ctx);
  if (typeof resolved === 'string') return resolved;
  if (typeof resolved === 'number' || typeof resolved === 'boolean') return String(resolved);
  throw new TemplateError(`expected a string, got ${JSON.stringify(resolved)}`, ctx.resourceId);
}

function resolve(value: unknown, ctx: ResolveContext): unknown {
  if (Array.isArray(value)) {
    return value.map((v) => resolve(v, ctx)).filter((v) => v !== NO_VALUE);
  }
  if (!isRecord(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const key = keys[0] as string;
    const arg = value[key];
    switch (key) {
      case 'Ref':
        return resolveRef(String(arg), ctx);
      case 'Fn::GetAtt':
        return resolveGetAtt(arg, ctx);
      case 'Fn::Join':
        return resolveJoin(arg, ctx);
      case 'Fn::Sub':
        return resolveSub(arg, ctx);
      case 'Fn::Select': {
        const [index, list] = expectArray(resolve(arg, ctx), 2, key, ctx);
        const items = expectArray(list, undefined, key, ctx);
        const item = items[Number(index)];
        if (item === undefined)
          throw new TemplateError(`Fn::Select index ${index} out of range`, ctx.resourceId);
        return item;
      }
      case 'Fn::Split': {
        const [delimiter, source] = expectArray(resolve(arg, ctx), 2, key, ctx);
        return String(source).split(String(delimiter));
      }
      case 'Fn::GetAZs': {
        const region = String(resolve(arg, ctx) || ctx.pseudo.region);
        return ['a', 'b', 'c'].map((suffix) => `${region}${suffix}`);
      }
      case 'Fn::If': {
        const [condition, whenTrue, whenFalse] = expectArray(arg, 3, key, ctx);
        return evaluateCondition(String(condition), ctx) ? resolve(whenTrue, ctx) : resolve(whenFalse, ctx);
      }
      case 'Fn::Equals': {
        const [a, b] = expectArray(resolve(arg, ctx), 2, key, ctx);
        return JSON.stringify(a) === JSON.stringify(b);
      }
      case 'Fn::Not':
        return !expectArray(resolve(arg, ctx), 1, key, ctx)[0];
      case 'Fn::And':
        return expectArray(resolve(arg, ctx), undefined, key, ctx).every(Boolean);
      case 'Fn::Or':
        return expectArray(resolve(arg, ctx), undefined, key, ctx).some(Boolean);
      case 'Condition':
        return evaluateCondition(String(arg), ctx);
      case 'Fn::FindInMap': {
        const [map, top, second] = expectArray(resolve(arg, ctx), 3, key, ctx).map(String) as [
          string,
          string,
          string,
        ];
        const found = ctx.template.Mappings?.[map]?.[top]?.[second];
        if (found === undefined)
          throw new TemplateError(`Fn::FindInMap ${map}.${top}.${second} not found`, ctx.resourceId);
        return found;
      }
      case 'Fn::Base64':
        return Buffer.from(String(resolve(arg, ctx)), 'utf8').toString('base64');
      case 'Fn::ToJsonString':
        return JSON.stringify(resolve(arg, ctx));
      case 'Fn::ImportValue': {
        const name = resolve(arg, ctx);
        const imported = typeof name === 'string' ? ctx.importValue?.(name) : undefined;
        if (imported === undefined) {
          throw new UnresolvedReferenceError(
            `Fn::ImportValue ${JSON.stringify(name)}`,
            ctx.importValue
              ? 'no stack started before this one exports it (start the exporting stack too: stacks are started in dependency order)'
              : 'cross-stack imports need the other stacks: run the whole app (startLocal / startLocalApp)',
            ctx.resourceId,
          );
        }
        return imported;
      }
      default:
        break;
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const r = resolve(v, ctx);
    if (r !== NO_VALUE) out[k] = r;
  }
  return out;
}

function resolveRef(name: string, ctx: ResolveContext): unknown {
  switch (name) {
    case 'AWS::Region':
      return ctx.pseudo.region;
    case 'AWS::AccountId':
      return ctx.pseudo.accountId;
    case 'AWS::Partition':
      return ctx.pseudo.partition;
    case 'AWS::URLSuffix':
      return ctx.pseudo.urlSuffix;
    case 'AWS::StackName':
      return ctx.pseudo.stackName;
    case 'AWS::StackId':
      return ctx.pseudo.stackId;
    case 'AWS::NoValue':
      return NO_VALUE;
    case 'AWS::NotificationARNs':
      return [];
    default:
      break;
  }
  const parameter = ctx.template.Parameters?.[name];
  if (parameter) {
    if (
      ctx.ssmParameter &&
      ctx.parameters?.[name] === undefined &&
      parameter.Type?.startsWith('AWS::SSM::Parameter::Value<')
    ) {
      // The template parameter holds the name of an SSM parameter; CloudFormation passes its value.
      const parameterName = String(parameter.Default ?? '');
      const stored = ctx.ssmParameter?.(parameterName);
      if (stored === undefined) {
        throw new UnresolvedReferenceError(
          `Ref ${name}`,
          `parameter of type ${parameter.Type} names SSM parameter ${parameterName || '(no Default)'}, which does not exist locally`,
          ctx.resourceId,
        );
      }
      return parameter.Type.includes('List<') ? stored.split(',') : stored;
    }
    const value = ctx.parameters?.[name] ?? parameter.Default;
    if (value === undefined) {
      throw new UnresolvedReferenceError(
        `Ref ${name}`,
        'parameter has no Default and no value was given',
        ctx.resourceId,
      );
    }
    return value;
  }
  const ref = ctx.registry.ref(name);
  if (ref !== undefined) return ref;
  const type = ctx.template.Resources[name]?.Type;
  throw new UnresolvedReferenceError(
    `Ref ${name}`,
    type ? `resource of type ${type} is not provisioned` : 'no such parameter or resource',
    ctx.resourceId,
  );
}

function resolveGetAtt(arg: unknown, ctx: ResolveContext): unknown {
  let logicalId: string;
  let attribute: string;
  if (typeof arg === 'string') {
    const dot = arg.indexOf('.');
    logicalId = arg.slice(0, dot);
    attribute = arg.slice(dot + 1);
  } else {
    const [id, attr] = expectArray(arg, 2, 'Fn::GetAtt', ctx);
    logicalId = String(id);
    attribute = String(resolve(attr, ctx));
  }
  const value = ctx.registry.getAtt(logicalId, attribute);
  if (value !== undefined) return value;
  const type = ctx.template.Resources[logicalId]?.Type;
  throw new UnresolvedReferenceError(
    `Fn::GetAtt ${logicalId}.${attribute}`,
    type ? `attribute unknown for ${type}` : 'no such resource',
    ctx.resourceId,
  );
}

function resolveJoin(arg: unknown, ctx: ResolveContext): string {
  const [delimiter, list] = expectArray(arg, 2, 'Fn::Join', ctx);
  const items = expectArray(resolve(list, ctx), undefined, 'Fn::Join', ctx);
  return items.map((item) => stringify(item, ctx)).join(String(delimiter));
}

function resolveSub(arg: unknown, ctx: ResolveContext): string {
  let template: string;
  let variables: Record<string, unknown> = {};
  if (typeof arg === 'string') {
    template = arg;
  } else {
    const [text, vars] = expectArray(arg, 2, 'Fn::Sub', ctx);
    template = String(text);
    variables = isRecord(vars) ? vars : {};
  }
  return template.replace(/\$\{([^}]*)\}/g, (_match, expression: string) => {
    if (expression.startsWith('!')) return `\${${expression.slice(1)}}`;
    const name = expression.trim();
    if (name in variables) return stringify(resolve(variables[name], ctx), ctx);
    const dot = name.indexOf('.');
    if (dot > 0 && !name.startsWith('AWS::')) {
      return stringify(resolveGetAtt([name.slice(0, dot), name.slice(dot + 1)], ctx), ctx);
    }
    return stringify(resolveRef(name, ctx), ctx);
  });
}

function evaluateCondition(name: string, ctx: ResolveContext): boolean {
  const condition = ctx.template.Conditions?.[name];
  if (condition === undefined) throw new TemplateError(`unknown condition ${name}`, ctx.resourceId);
  return Boolean(resolve(condition, ctx));
}

/** Whether a resource's `Condition` (if any) holds. */
export function resourceEnabled(logicalId: string, ctx: ResolveContext): boolean {
  const condition = ctx.template.Resources[logicalId]?.Condition;
  return condition === undefined || evaluateCondition(condition, ctx);
}

function stringify(value: unknown, ctx: ResolveContext): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new TemplateError(
    `expected a string in Fn::Join/Fn::Sub, got ${JSON.stringify(value)}`,
    ctx.resourceId,
  );
}

function expectArray(value: unknown, length: number | undefined, fn: string, ctx: ResolveContext): unknown[] {
  if (!Array.isArray(value) || (length !== undefined && value.length < length)) {
    throw new TemplateError(
      `${fn} expects a list${length ? ` of ${length}` : ''}, got ${JSON.stringify(value)}`,
      ctx.resourceId,
    );
  }
  return value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Logical ids a value refers to (Ref, Fn::GetAtt, Fn::Sub variables), for dependency ordering. */
export function referencedIds(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) referencedIds(v, into);
  } else if (isRecord(value)) {
    for (const [key, v] of Object.entries(value)) {
      if (key === 'Ref' && typeof v === 'string' && !v.startsWith('AWS::')) into.add(v);
      else if (key === 'Fn::GetAtt') {
        const id = typeof v === 'string' ? v.split('.')[0] : Array.isArray(v) ? v[0] : undefined;
        if (typeof id === 'string') into.add(id);
      } else if (key === 'Fn::Sub') {
        const text = typeof v === 'string' ? v : Array.isArray(v) ? v[0] : '';
        const vars = Array.isArray(v) && isRecord(v[1]) ? v[1] : {};
        for (const m of String(text).matchAll(/\$\{([^!}][^}]*)\}/g)) {
          const name = (m[1] as string).trim().split('.')[0] as string;
          if (!name.startsWith('AWS::') && !(name in vars)) into.add(name);
        }
        referencedIds(vars, into);
      } else referencedIds(v, into);
    }
  }
  return into;
}

/**
 * Logical ids of the template's resources, each after everything it references or DependsOn.
 * Throws on a cycle.
 */
export function dependencyOrder(template: CfnTemplate): string[] {
  const ids = Object.keys(template.Resources);
  const deps = new Map<string, Set<string>>();
  for (const id of ids) {
    const resource = template.Resources[id] as CfnResource;
    const set = referencedIds(resource.Properties);
    const dependsOn = resource.DependsOn;
    for (const d of typeof dependsOn === 'string' ? [dependsOn] : (dependsOn ?? [])) set.add(d);
    set.delete(id);
    deps.set(id, new Set([...set].filter((d) => d in template.Resources)));
  }
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, trail: string[]): void => {
    const s = state.get(id);
    if (s === 'done') return;
    if (s === 'visiting') throw new TemplateError(`dependency cycle: ${[...trail, id].join(' -> ')}`);
    state.set(id, 'visiting');
    for (const d of deps.get(id) ?? []) visit(d, [...trail, id]);
    state.set(id, 'done');
    order.push(id);
  };
  for (const id of ids) visit(id, []);
  return order;
}
