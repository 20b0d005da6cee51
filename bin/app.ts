#!/usr/bin/env node
import { createOutboxApp } from '../lib/outbox-app.ts';

createOutboxApp();
