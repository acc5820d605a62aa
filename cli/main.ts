#!/usr/bin/env node
console.log("bucardo");
