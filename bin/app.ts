#!/usr/bin/env node
import { App, Aspects, RemovalPolicy } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OutboxStack } from '../lib/outbox-stack.ts';

const app = new App();
new OutboxStack(app, 'ServerlessOutbox', {
  description: 'serverless-outbox: transactional outbox, relay, subscriptions and recovery',
  tableRemovalPolicy:
    app.node.tryGetContext('outbox:retainTables') === 'false' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
});
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
