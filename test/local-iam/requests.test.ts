import { describe, expect, it } from 'vitest';
import { credentialOf, type MappingFacts, mapCall, UnmappedCallError } from '../../local/iam/requests.ts';

const TABLE_ARN = 'arn:aws:dynamodb:us-east-1:000000000000:table/Outbox';
const facts: MappingFacts = {
  region: 'us-east-1',
  accountId: '000000000000',
  partitionKeys: new Map([['Outbox', { table: 'pk', indexes: { 'pending-by-due-time': 'pendingShard' } }]]),
  queueArn: (url) => (url.endsWith('/billing') ? 'arn:aws:sqs:us-east-1:000000000000:billing' : undefined),
  // DynamoDB Local's stream ARNs name region `ddblocal`: IAM sees the runtime's region.
  streamOfIterator: (iterator) =>
    iterator === 'it-1' ? 'arn:aws:dynamodb:ddblocal:000000000000:table/Outbox/stream/2026' : undefined,
};
const dynamo = (operation: string, body: unknown) =>
  mapCall(
    { service: 'dynamodb', operation: `DynamoDB_20120810.${operation}`, body: JSON.stringify(body) },
    facts,
  );

describe('IAM request mapping', () => {
  it('reads the caller and the service from the SigV4 credential scope', () => {
    expect(
      credentialOf(
        'AWS4-HMAC-SHA256 Credential=Stack-Fn-1/20261130/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x',
      ),
    ).toEqual({ accessKeyId: 'Stack-Fn-1', service: 'sqs' });
    expect(credentialOf(undefined)).toBeUndefined();
  });

  it('maps UpdateItem to the table ARN the policies use, with LeadingKeys, Attributes and ReturnValues', () => {
    const [request, ...rest] = dynamo('UpdateItem', {
      TableName: 'Outbox',
      Key: { pk: { S: 'ACK#e1#billing' }, sk: { S: 'A' } },
      UpdateExpression: 'SET #s = :s, ackedAt = if_not_exists(ackedAt, :now) REMOVE pendingShard',
      ConditionExpression: 'attribute_exists(pk) AND #s <> :s',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': { S: 'ACKED' }, ':now': { N: '1' } },
      ReturnValues: 'NONE',
    });
    expect(rest).toEqual([]);
    expect(request?.action).toBe('dynamodb:UpdateItem');
    expect(request?.resource).toBe(TABLE_ARN);
    expect(request?.context['dynamodb:LeadingKeys']).toEqual(['ACK#e1#billing']);
    expect([...(request?.context['dynamodb:Attributes'] ?? [])].sort()).toEqual([
      'ackedAt',
      'pendingShard',
      'pk',
      'sk',
      'status',
    ]);
    expect(request?.context['dynamodb:ReturnValues']).toBe('NONE');
  });

  it('authorizes each item of TransactWriteItems as its own action (there is no TransactWriteItems action)', () => {
    const requests = dynamo('TransactWriteItems', {
      TransactItems: [
        { Put: { TableName: 'Outbox', Item: { pk: { S: 'EVT#1' }, sk: { S: 'x' } } } },
        { Update: { TableName: 'Orders', Key: { id: { S: 'o1' } }, UpdateExpression: 'SET v = :v' } },
        {
          ConditionCheck: {
            TableName: 'Outbox',
            Key: { pk: { S: 'HEAD' }, sk: { S: 'x' } },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        { Delete: { TableName: 'Outbox', Key: { pk: { S: 'P#1' }, sk: { S: 'x' } } } },
      ],
    });
    expect(requests.map((r) => r.action)).toEqual([
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:ConditionCheckItem',
      'dynamodb:DeleteItem',
    ]);
    expect(requests[1]?.resource).toBe('arn:aws:dynamodb:us-east-1:000000000000:table/Orders');
    expect(requests.map((r) => r.context['dynamodb:LeadingKeys'])).toEqual([
      ['EVT#1'],
      undefined,
      ['HEAD'],
      ['P#1'],
    ]);
  });

  it('maps a Query on an index to the index ARN with the index partition key as LeadingKeys', () => {
    const [request] = dynamo('Query', {
      TableName: 'Outbox',
      IndexName: 'pending-by-due-time',
      KeyConditionExpression: '#p = :p AND pendingDueAt <= :now',
      ExpressionAttributeNames: { '#p': 'pendingShard' },
      ExpressionAttributeValues: { ':p': { N: '3' }, ':now': { N: '9' } },
      Select: 'ALL_PROJECTED_ATTRIBUTES',
    });
    expect(request).toEqual({
      action: 'dynamodb:Query',
      resource: `${TABLE_ARN}/index/pending-by-due-time`,
      context: { 'dynamodb:LeadingKeys': ['3'], 'dynamodb:Select': 'ALL_PROJECTED_ATTRIBUTES' },
    });
  });

  it('maps BatchWriteItem per table with every item partition key', () => {
    const requests = dynamo('BatchWriteItem', {
      RequestItems: {
        Outbox: [
          { PutRequest: { Item: { pk: { S: 'a' } } } },
          { DeleteRequest: { Key: { pk: { S: 'b' } } } },
        ],
      },
    });
    expect(requests).toEqual([
      {
        action: 'dynamodb:BatchWriteItem',
        resource: TABLE_ARN,
        context: { 'dynamodb:LeadingKeys': ['a', 'b'] },
      },
    ]);
  });

  it('maps DynamoDB Streams GetRecords to the stream its iterator reads', () => {
    const [request] = mapCall(
      {
        service: 'dynamodb',
        operation: 'DynamoDBStreams_20120810.GetRecords',
        body: '{"ShardIterator":"it-1"}',
      },
      facts,
    );
    expect(request).toEqual({
      action: 'dynamodb:GetRecords',
      resource: `${TABLE_ARN}/stream/2026`,
      context: {},
    });
  });

  it('maps SQS batches to their single actions, by queue URL, in the JSON and the query protocol', () => {
    const json = mapCall(
      {
        service: 'sqs',
        operation: 'AmazonSQS.DeleteMessageBatch',
        body: '{"QueueUrl":"http://h/000000000000/billing","Entries":[]}',
      },
      facts,
    );
    const query = mapCall(
      {
        service: 'sqs',
        operation: 'SendMessage',
        body: 'Action=SendMessage&QueueUrl=http%3A%2F%2Fh%2F000000000000%2Fother',
      },
      facts,
    );
    expect(json).toEqual([
      { action: 'sqs:DeleteMessage', resource: 'arn:aws:sqs:us-east-1:000000000000:billing', context: {} },
    ]);
    expect(query).toEqual([
      { action: 'sqs:SendMessage', resource: 'arn:aws:sqs:us-east-1:000000000000:other', context: {} },
    ]);
  });

  it('maps SNS Publish, EventBridge PutEvents (per bus, source and detail type) and Lambda Invoke', () => {
    expect(
      mapCall(
        {
          service: 'sns',
          operation: 'Publish',
          body: 'Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At.fifo',
        },
        facts,
      ),
    ).toEqual([
      { action: 'sns:Publish', resource: 'arn:aws:sns:us-east-1:000000000000:t.fifo', context: {} },
    ]);
    const events = mapCall(
      {
        service: 'events',
        operation: 'AWSEvents.PutEvents',
        body: JSON.stringify({
          Entries: [
            { EventBusName: 'orders', Source: 's', DetailType: 'd' },
            { EventBusName: 'orders', Source: 's', DetailType: 'd' },
            { Source: 's2' },
          ],
        }),
      },
      facts,
    );
    expect(events).toEqual([
      {
        action: 'events:PutEvents',
        resource: 'arn:aws:events:us-east-1:000000000000:event-bus/orders',
        context: { 'events:source': 's', 'events:detail-type': 'd' },
      },
      {
        action: 'events:PutEvents',
        resource: 'arn:aws:events:us-east-1:000000000000:event-bus/default',
        context: { 'events:source': 's2' },
      },
    ]);
    expect(
      mapCall(
        {
          service: 'lambda',
          operation: '',
          body: '',
          method: 'POST',
          path: '/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afn%3Alive/invocations',
        },
        facts,
      ),
    ).toEqual([
      {
        action: 'lambda:InvokeFunction',
        resource: 'arn:aws:lambda:us-east-1:000000000000:function:fn',
        context: {},
      },
    ]);
    expect(() =>
      mapCall(
        { service: 'lambda', operation: '', body: '', method: 'GET', path: '/2015-03-31/functions/fn' },
        facts,
      ),
    ).toThrow(UnmappedCallError);
  });
  it('maps path-style S3 object calls to the object ARN (the bucket ARN for ListBucket)', () => {
    const s3 = (method: string, path: string) =>
      mapCall({ service: 's3', operation: '', body: '', method, path }, facts);
    expect(s3('PUT', '/claims/events/e%201.json')).toEqual([
      { action: 's3:PutObject', resource: 'arn:aws:s3:::claims/events/e 1.json', context: {} },
    ]);
    expect(s3('GET', '/claims/events/e1.json?x-id=GetObject')[0]?.action).toBe('s3:GetObject');
    expect(s3('HEAD', '/claims/e1')[0]?.action).toBe('s3:GetObject');
    expect(s3('DELETE', '/claims/e1')[0]?.action).toBe('s3:DeleteObject');
    expect(s3('GET', '/claims?list-type=2')).toEqual([
      { action: 's3:ListBucket', resource: 'arn:aws:s3:::claims', context: {} },
    ]);
  });
});
