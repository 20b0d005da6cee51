#!/usr/bin/env node
// The CDK app `cdk deploy` deploys from this repository: the orders demo (examples/orders).
import { createOrdersApp } from '../examples/orders/app.ts';

createOrdersApp();
