import { CfnResource, Stack } from 'aws-cdk-lib';

/** One CloudFormation resource of a stack, as it will be synthesized (escape-hatch overrides included). */
export interface ModelResource {
  readonly logicalId: string;
  readonly type: string;
  readonly properties: Record<string, unknown>;
  readonly construct: CfnResource;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The logical id a resolved value points at: `{ Ref: id }` or `{ 'Fn::GetAtt': [id, attribute] }` (also the
 * `'id.attribute'` string form). Anything else (an ARN string, an import, a join) points at nothing in the stack.
 */
export function referencedId(value: unknown, attribute?: string): string | undefined {
  if (!isObject(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  if (typeof value.Ref === 'string') return attribute === undefined ? value.Ref : undefined;
  const getAtt = value['Fn::GetAtt'];
  let id: unknown;
  let attr: unknown;
  if (Array.isArray(getAtt)) [id, attr] = getAtt;
  else if (typeof getAtt === 'string') [id, attr] = getAtt.split('.');
  if (typeof id !== 'string') return undefined;
  return attribute === undefined || attr === attribute ? id : undefined;
}

/** A resolved number (CloudFormation takes numbers as strings too); undefined when absent or not a number. */
export function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  return undefined;
}

/** A resolved boolean (also the strings "true"/"false"). */
export function booleanOf(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  return undefined;
}

/** A resolved object property (or undefined). */
export function objectOf(value: unknown): Json | undefined {
  if (isObject(value)) return value;
  if (typeof value === 'string') {
    try {
      const parsed: unknown = JSON.parse(value);
      return isObject(parsed) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The CloudFormation resources of one stack, by logical id, resolved as `cdk synth` will write them (property
 * overrides and deletions applied, tokens resolved to `Ref` / `Fn::GetAtt`).
 */
export class StackModel {
  readonly stack: Stack;
  readonly #byId = new Map<string, ModelResource>();

  constructor(stack: Stack) {
    this.stack = stack;
    for (const node of stack.node.findAll()) {
      if (!CfnResource.isCfnResource(node) || Stack.of(node) !== stack) continue;
      const rendered = stack.resolve(node._toCloudFormation()) as {
        Resources?: Record<string, { Type?: string; Properties?: Json }>;
      };
      for (const [logicalId, resource] of Object.entries(rendered.Resources ?? {})) {
        this.#byId.set(logicalId, {
          logicalId,
          type: resource.Type ?? node.cfnResourceType,
          properties: resource.Properties ?? {},
          construct: node,
        });
      }
    }
  }

  get resources(): readonly ModelResource[] {
    return [...this.#byId.values()];
  }

  ofType(type: string): ModelResource[] {
    return this.resources.filter((r) => r.type === type);
  }

  /** The resource of this stack a resolved value refers to, when it is of the given type. */
  target(value: unknown, type: string, attribute?: string): ModelResource | undefined {
    const id = referencedId(value, attribute);
    const resource = id === undefined ? undefined : this.#byId.get(id);
    return resource?.type === type ? resource : undefined;
  }
}
